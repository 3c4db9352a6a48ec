prefix     = "openscience"
project_id = "openscience-collective"

zone   = "us-central1-c"
region = "us-central1"

# Budget alerts to support@2i2c.org when 2i2c pays the bill and passes it on.
budget_alert_enabled = true
billing_account_id   = "0157F7-E3EA8C-25AC3C"

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

# Homes are on per-hub disks served by jupyterhub-home-nfs: no Filestore (the
# module's default would create a 1 TiB one, about 200 USD a month).
filestores = {}
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
