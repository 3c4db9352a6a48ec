local hub_name = std.extVar('VARS_2I2C_HUB_NAME');
local cluster_name = std.extVar('VARS_2I2C_CLUSTER_NAME');
local provider = std.extVar('VARS_2I2C_PROVIDER');
local hub_domain = std.extVar('VARS_2I2C_HUB_DOMAIN');
local account_id = std.extVar('VARS_2I2C_ACCOUNT_ID');

// Assume we are a staging hub if the word 'staging' is in the
// name of the hub.
local is_staging = std.member(hub_name, 'staging');

// Return False if hub_name contains ['binder', 'spyglass', 'public', 'ephemeral'] for rolling out compute usage quotas
local hub_types = ['binder', 'spyglass', 'public', 'ephemeral'];
local is_usage_quotas_hub = !std.any([
  std.length(std.findSubstr(pattern, hub_name)) > 0
  for pattern in hub_types
]);

local emitDaskHubCompatibleConfig(basehubConfig) =
  // Handle legacy 'daskhub' type hubs
  // Note: This relies on `jsonnet` being called with absolute path to
  // the file, and the symlink from helm-charts/daskhub/values.jsonnet
  local isDaskHub = std.splitLimitR(std.thisFile, '/', 3)[2] == 'daskhub';

  if isDaskHub then { basehub: basehubConfig } else basehubConfig;

local jupyterhubHomeNFSResources = {
  quotaEnforcer+: {
    resources: {
      requests: {
        cpu: 0.2,
        memory: '750M',
      },
      limits: {
        cpu: 0.4,
        memory: '1G',
      },
    },
  },
  nfsServer+: {
    resources: {
      requests: {
        cpu: 0.2,
        memory: '2G',
      },
      limits: {
        cpu: 0.4,
        memory: '6G',
      },
    },
  },
  prometheusExporter+: {
    resources: {
      requests: {
        cpu: 0.02,
        memory: '15M',
      },
      limits: {
        cpu: 0.04,
        memory: '20M',
      },
    },
  },
  autoResizer+: {
    resources: {
      requests: {
        cpu: 0.01,
        memory: '64Mi',
      },
      limits: {
        memory: '1Gi',
      },
    },
  },
};

local jupyterhubHomeNFSConfig = {
  eks: {
    enabled: provider == 'aws',
  },
  gke: {
    enabled: provider == 'gcp',
  },
  quotaEnforcer+: {
    config: {
      QuotaManager: {
        paths: ['/export/%s' % hub_name],
        hard_quota: if is_staging then 1 else 10,
        projects_file: '/export/%s/.projects' % hub_name,
        projid_file: '/export/%s/.projid' % hub_name,
        log_level: 'INFO',
      },
    },
  },
} + if is_staging then {} else jupyterhubHomeNFSResources;

local jupyterhubUsageQuotasHubConfig = {
  config: {
    UsageQuotaManager: {
      hub_namespace: '%s' % hub_name,
    },
    UsageViewer: {
      hub_namespace: '%s' % hub_name,
      public_hub_url: 'https://%s/' % hub_domain,
    },
  },
  extraConfig: {
    '11-setup-usage-quotas': |||
      import os
      from jupyterhub_usage_quotas import setup_usage_quotas
      setup_usage_quotas(c)
      for service in c.JupyterHub.services:
        if service["name"] == "usage-quota":
          service["environment"] = {
            "JUPYTERHUB_USAGE_QUOTAS_PROMETHEUS_USERNAME": os.environ.get("JUPYTERHUB_USAGE_QUOTAS_PROMETHEUS_USERNAME"),
            "JUPYTERHUB_USAGE_QUOTAS_PROMETHEUS_PASSWORD": os.environ.get("JUPYTERHUB_USAGE_QUOTAS_PROMETHEUS_PASSWORD")
          }
    |||,
  },
};

local jupyterhubUsageQuotasServicesConfig = {
  'usage-quota': {
    url: 'http://hub:9000',
    display: true,
    oauth_no_confirm: true,
    command: [
      'python',
      '-m',
      'jupyterhub_usage_quotas.services.usage_viewer',
      '--config-files=/usr/local/etc/jupyterhub/jupyterhub_config.d/jupyterhub_usage_quotas_config.py',
    ],
  },
};

local jupyterhubUsageQuotasRolesConfig = {
  'usage-quota-service': {
    scopes: [
      'read:users',
      'list:services',
      'read:services',
    ],
    services: [
      'usage-quota',
    ],
  },
};

local jupyterhubGroupsExporterConfig = {
  // Config values
  config: {
    groupsExporter: {
      update_info_interval: 3600,
      update_metrics_interval: 300,
      update_dirsize_interval: 3600,
      prometheus_host: 'support-prometheus-server.support.svc.cluster.local',
      prometheus_port: 80,
    },
  },
  // Memory resources chosen by querying PromQL "max(container_memory_working_set_bytes{name!='', pod=~'.*groups-exporter.*'})" over all hubs
  // CPU resources chosen by querying PromQL "max(irate(container_cpu_usage_seconds_total{name!='', pod=~'.*groups-exporter.*'}[5m]))" over all hubs
  resources: {
    requests: {
      cpu: 0.01,
      memory: '128Mi',
    },
    limits: {
      cpu: 0.1,
      memory: '256Mi',
    },
  },
};

local pvConfig =
  if provider == 'gcp' then {
    pv: {
      serverIP: 'storage-quota-home-nfs.%s.svc.cluster.local' % hub_name,
      // We pick soft over hard, so NFS lockups don't lead to hung processes
      mountOptions: ['soft', 'noatime'],
    },
  } else
    if provider == 'aws' then {
      pv: {
        mountOptions: [
          'rsize=1048576',
          'wsize=1048576',
          'timeo=600',
          'soft',
          'retrans=2',
          'noresvport',
        ],
      },
    } else {};

local nfsConfig = {
  dirsizeReporter: {
    reportTotalSize: provider == 'kubeconfig',
  },
  volumeReporter: {
    enabled: provider == 'kubeconfig',
  },
} + pvConfig;

local hubIngressConfig = {
  hosts: [hub_domain],
  tls: [
    {
      hosts: [hub_domain],
      secretName: 'https-auto-tls',
    },
  ],
};

local jupyterhubConfig =
  {
    ingress: hubIngressConfig,
    hub: {
           services: {
                       binder: {
                         // dynamically configure redirect_uri for binderhub service, so we don't have to do that in each hub
                         oauth_redirect_uri: 'https://%s/services/binder/oauth_callback' % [hub_domain],
                       },
                     } +
                     if is_usage_quotas_hub then
                       jupyterhubUsageQuotasServicesConfig
                     else {},
           config: {
             OAuthenticator: {
               // Always set oauth callback URL, to prevent it from being
               // guessed 'wrong'.
               oauth_callback_url: 'https://%s/hub/oauth_callback' % [hub_domain],
             },
           } + jupyterhubUsageQuotasHubConfig.config,
         } +
         if is_usage_quotas_hub then
           {
             loadRoles: jupyterhubUsageQuotasRolesConfig,
             extraConfig: jupyterhubUsageQuotasHubConfig.extraConfig,
           }
         else {},
  } +
  if provider == 'aws' then {
    singleuser: {
      nodeSelector: {
        '2i2c/hub-name': hub_name,
        'node.kubernetes.io/instance-type': 'r5.xlarge',
      },
    },
  }
  else if provider == 'gcp' then {
    singleuser: {
      nodeSelector: {
        'node.kubernetes.io/instance-type': 'n2-highmem-4',
      },
    },
  } else {};

local daskGatewayConfig =
  if provider == 'aws' then {
    gateway: {
      backend: {
        scheduler: {
          extraPodConfig: {
            nodeSelector: {
              '2i2c/hub-name': hub_name,
            },
          },
        },
        worker: {
          extraPodConfig: {
            nodeSelector: {
              '2i2c/hub-name': hub_name,
            },
          },
        },
      },
    },
  } else {};

local nodePlaceholderConfig = {
  nodeSelector: {
    '2i2c/hub-name': hub_name,
  },
};

local binderhubServiceConfig = {
  // Schedule builder pods to run on the default smallest user nodes
  // https://github.com/2i2c-org/infrastructure/issues/4241
  dockerApi:
    {} +
    if provider == 'aws' then {
      nodeSelector: {
        '2i2c/hub-name': hub_name,
        'node.kubernetes.io/instance-type': 'r5.xlarge',
      },
    }
    else if provider == 'gcp' then {
      nodeSelector: {
        'node.kubernetes.io/instance-type': 'n2-highmem-4',
      },
    } else {},
  config:
    {} +
    if provider == 'aws' then {
      KubernetesBuildExecutor: {
        node_selector: {
          '2i2c/hub-name': hub_name,
          'node.kubernetes.io/instance-type': 'r5.xlarge',
        },
      },
    }
    else if provider == 'gcp' then {
      KubernetesBuildExecutor: {
        node_selector: {
          'node.kubernetes.io/instance-type': 'n2-highmem-4',
        },
      },
    } else {},
  // For auth
  extraEnv: [
    {
      name: 'JUPYTERHUB_API_URL',
      value: 'http://hub.%s.svc.cluster.local:8081/hub/api' % hub_name,
    },
  ],
};

// We define a service account that is attached by default to all Jupyter user pods
// and dask-gateway workers. By default, this has no permissions for clusters not
// on GCP or AWS - see docs/topic/features.md.
local userServiceAccountConfig =
  {
    enabled: true,
  } +
  if provider == 'aws' then {
    annotations: {
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::%s:role/%s-%s' % [account_id, cluster_name, hub_name],
    },
  } else if provider == 'gcp' then {
    annotations: {
      'iam.gke.io/gcp-service-account': '%s-%s@%s.iam.gserviceaccount.com' % [cluster_name, hub_name, account_id],
    },
  } else {
    annotations: {},
  };


emitDaskHubCompatibleConfig(
  {
    nfs: nfsConfig,
    'jupyterhub-home-nfs': jupyterhubHomeNFSConfig,
    'jupyterhub-groups-exporter': jupyterhubGroupsExporterConfig,
    jupyterhub: jupyterhubConfig,
    userServiceAccount: userServiceAccountConfig,
    'dask-gateway': daskGatewayConfig,
    'binderhub-service': binderhubServiceConfig,
    nodePlaceholder: nodePlaceholderConfig,
  }
)
