prefix     = "openscience"
project_id = "openscience-collective"

zone   = "us-central1-c"
region = "us-central1"

# Budget alerts to support@2i2c.org when 2i2c pays the bill and passes it on.
budget_alert_enabled = true
billing_account_id   = "0157F7-E3EA8C-25AC3C"

# TODO: pin the Kubernetes versions before applying: take the newest version of
# GKE's regular channel from the output regular_channel_latest_k8s_versions of
# `terraform plan -var-file=projects/openscience.tfvars`, then uncomment.
# k8s_versions = {
#   min_master_version : "",
#   core_nodes_version : "",
#   notebook_nodes_version : "",
#   dask_nodes_version : "",
# }

core_node_machine_type = "n2-highmem-2"
enable_network_policy  = true

notebook_nodes = {
  "n2-highmem-4" = {
    min          = 0
    max          = 100
    machine_type = "n2-highmem-4"
  }
  "n2-highmem-16" = {
    min          = 0
    max          = 100
    machine_type = "n2-highmem-16"
  }
  "n2-highmem-64" = {
    min          = 0
    max          = 100
    machine_type = "n2-highmem-64"
  }
  "gpu-t4" = {
    min          = 0
    max          = 20
    machine_type = "n1-highmem-8"
    gpu = {
      enabled = true
      type    = "nvidia-tesla-t4"
      count   = 1
    }
  }
}

dask_nodes = {
  "n2-highmem-16" = {
    min          = 0
    max          = 200
    machine_type = "n2-highmem-16"
  }
}

persistent_disks = {
  "staging" = {
    size        = 10
    name_suffix = "staging"
  }
  "prod" = {
    size        = 10
    name_suffix = "prod"
  }
  "workshop" = {
    size        = 10
    name_suffix = "workshop"
  }
}

container_repos = ["imagebuilding"]
