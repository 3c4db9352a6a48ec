region                 = "us-west-2"
cluster_name           = "openscience"
cluster_nodes_location = "us-west-2a"

ebs_volumes = {
  "staging" = {
    name_suffix = "staging"
    type        = "gp3"
    size        = 10
    tags        = { "2i2c:hub-name" = "staging" }
  }
  "prod" = {
    name_suffix = "prod"
    type        = "gp3"
    size        = 10
    tags        = { "2i2c:hub-name" = "prod" }
  }
  "workshop" = {
    name_suffix = "workshop"
    type        = "gp3"
    size        = 10
    tags        = { "2i2c:hub-name" = "workshop" }
  }
}
enable_nfs_backup = true
