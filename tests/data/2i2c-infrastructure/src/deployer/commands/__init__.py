import deployer.commands.deploy_dashboards  # noqa: F401
import deployer.commands.deployer  # noqa: F401
import deployer.commands.plan_upgrade.jobs  # noqa: F401
import deployer.commands.validate.config  # noqa: F401
