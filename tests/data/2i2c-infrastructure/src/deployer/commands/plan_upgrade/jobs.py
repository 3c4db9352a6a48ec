import json
import os

import typer
from ruamel.yaml import YAML

from deployer.app import CONTINUOUS_DEPLOYMENT, app
from deployer.utils.file_acquisition import REPO_ROOT_PATH, get_all_cluster_yaml_files
from deployer.utils.rendering import create_markdown_comment, print_colour

from .decision import (
    assign_staging_jobs_for_missing_clusters,
    discover_modified_common_files,
    discover_modified_iaac_files,
    generate_hub_matrix_jobs,
    generate_provider_hub_matrix_jobs,
    generate_support_matrix_jobs,
    pretty_print_matrix_jobs,
)

# Without `pure=True`, I get an exception about str / byte issues
yaml = YAML(typ="safe", pure=True)


@app.command(rich_help_panel=CONTINUOUS_DEPLOYMENT)
def plan_health_check(
    changed_filepaths: str = typer.Argument(
        ..., help="Comma delimited list of files that have changed"
    ),
):
    """
    Analyze added or modified files from a GitHub Pull Request and
    decide which clusters and/or hubs require health checks to be performed.
    """
    changed_filepaths = changed_filepaths.split(",")

    # Convert changed filepaths into absolute Posix Paths
    changes_per_provider = discover_modified_iaac_files(changed_filepaths)
    changed_filepaths = [
        REPO_ROOT_PATH.joinpath(filepath) for filepath in changed_filepaths
    ]

    # Get a list of filepaths to all cluster.yaml files in the repo
    cluster_files = get_all_cluster_yaml_files()

    # Empty lists to store job definitions in
    staging_hub_matrix_jobs = []
    prod_hub_matrix_jobs = []

    for cluster_file in cluster_files:
        # Read in the cluster.yaml file
        with open(cluster_file) as f:
            cluster_config = yaml.load(f)

        # Get cluster's name and its cloud provider
        cluster_name = cluster_config.get("name", {})
        provider = cluster_config.get("provider", {})
        real_provider = provider
        if provider == "kubeconfig":
            provider_url = cluster_config.get("provider_url", "")
            if "azure" in provider_url:
                real_provider = "azure"
            elif "jetstream" in provider_url:
                real_provider = "openstack"

        # Generate template dictionary for all jobs associated with this cluster
        cluster_info = {
            "cluster_name": cluster_name,
            "provider": provider,
            "choice_reason": "Core common infrastructure has been updated",
        }

        # Check if this cluster's terraform file has been modified. If so, set boolean flags to True
        if real_provider != "kubeconfig":
            terraform_file_paths = [
                REPO_ROOT_PATH
                / "terraform"
                / real_provider
                / "projects"
                / f"{cluster_name}.tfvars"
            ]
        else:
            print(real_provider)
            # It might be azure or jetstream2, so we check both
            terraform_file_paths = [
                REPO_ROOT_PATH
                / "terraform/openstack/projects"
                / f"{cluster_name}.tfvars",
                REPO_ROOT_PATH / "terraform/openstack/azure" / f"{cluster_name}.tfvars",
            ]
        for terraform_file_path in terraform_file_paths:
            intersection = set(changed_filepaths).intersection([terraform_file_path])
            if intersection:
                break

        if intersection:
            print_colour(
                f"This cluster's terraform file has been modified. Generating jobs to run the health check against all hubs on this cluster: {cluster_name}"
            )
            check_all_hubs_on_this_cluster = True
            cluster_info["choice_reason"] = "terraform file was modified"
        else:
            check_all_hubs_on_this_cluster = False

        # If this is an AWS cluster, check if this cluster's eksctl file file has been modified. If so, set boolean flags to True
        eksctl_file_path = REPO_ROOT_PATH / "eksctl" / f"{cluster_name}.jsonnet"
        intersection = set(changed_filepaths).intersection([eksctl_file_path])
        if intersection:
            print_colour(
                f"This cluster.yaml eksctl file has been modified. Generating jobs to run the health check against all hubs on this cluster: {cluster_name}"
            )
            check_all_hubs_on_this_cluster = True
            cluster_info["choice_reason"] = "eksctl file was modified"

        # Generate a job matrix of all hubs that need upgrading on this cluster
        staging_hubs, prod_hubs = generate_provider_hub_matrix_jobs(
            cluster_config,
            cluster_info,
            real_provider,
            all_hubs_on_this_cluster=check_all_hubs_on_this_cluster,
            all_hubs_in_the_provider=changes_per_provider,
        )
        staging_hub_matrix_jobs.extend(staging_hubs)
        prod_hub_matrix_jobs.extend(prod_hubs)

    # Clean up the matrix jobs
    staging_hub_matrix_jobs = assign_staging_jobs_for_missing_clusters(
        staging_hub_matrix_jobs, prod_hub_matrix_jobs
    )
    # Pretty print the jobs using rich
    pretty_print_matrix_jobs(staging_hub_matrix_jobs, prod_hub_matrix_jobs)

    # The existence of the CI environment variable is an indication that we are running
    # in an GitHub Actions workflow
    # https://docs.github.com/en/actions/using-workflows/workflow-syntax-for-github-actions#example-defining-outputs-for-a-job
    # This will avoid errors trying to set CI output variables in an environment that
    # doesn't exist.
    ci_env = os.environ.get("CI", False)
    # More info on GITHUB_OUTPUT: https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/passing-information-between-jobs
    output_file = os.getenv("GITHUB_OUTPUT")
    if ci_env:
        # Add these matrix jobs as output variables for use in another job
        with open(output_file, "a") as f:
            f.write(f"staging-jobs={json.dumps(staging_hub_matrix_jobs)}\n")
            f.write(f"prod-jobs={json.dumps(prod_hub_matrix_jobs)}\n")

        # Don't bother generating a comment if all of the matrices are empty
        if staging_hub_matrix_jobs or prod_hub_matrix_jobs:
            # Generate Markdown tables from the job matrices and write them to a file
            # for use in another job
            create_markdown_comment([], staging_hub_matrix_jobs, prod_hub_matrix_jobs)


@app.command(rich_help_panel=CONTINUOUS_DEPLOYMENT)
def plan_upgrade(
    changed_filepaths: str = typer.Argument(
        ..., help="Comma delimited list of files that have changed"
    ),
    pr_labels: str = typer.Argument(
        "[]",
        help="JSON formatted list of PR labels, where 'deployer:skip-deploy', 'deployer:skip-deploy-hubs', 'deployer:deploy-support', and 'deployer:deploy-hubs' are respected.",
    ),
):
    """
    Analyze added or modified files and labels from a GitHub Pull Request and
    decide which clusters and/or hubs require helm upgrades to be performed for
    their *hub helm charts or the support helm chart.
    """
    pr_labels = json.loads(pr_labels)

    changed_filepaths = changed_filepaths.split(",")
    (
        upgrade_support_on_all_clusters,
        upgrade_all_hubs_on_all_clusters,
    ) = discover_modified_common_files(changed_filepaths)

    if "deployer:deploy-support" in pr_labels:
        upgrade_support_on_all_clusters = True
    if "deployer:deploy-hubs" in pr_labels:
        upgrade_all_hubs_on_all_clusters = True

    # Convert changed filepaths into absolute Posix Paths
    changed_filepaths = [
        REPO_ROOT_PATH.joinpath(filepath) for filepath in changed_filepaths
    ]

    # Get a list of filepaths to all cluster.yaml files in the repo
    cluster_files = get_all_cluster_yaml_files()

    # Empty lists to store job definitions in
    support_matrix_jobs = []
    staging_hub_matrix_jobs = []
    prod_hub_matrix_jobs = []

    for cluster_file in cluster_files:
        # Read in the cluster.yaml file
        with open(cluster_file) as f:
            cluster_config = yaml.load(f)

        # Get cluster's name and its cloud provider
        cluster_name = cluster_config.get("name", {})
        provider = cluster_config.get("provider", {})

        # Generate template dictionary for all jobs associated with this cluster
        cluster_info = {
            "cluster_name": cluster_name,
            "provider": provider,
            "choice_reason": "",
        }

        # Check if this cluster file has been modified. If so, set boolean flags to True
        intersection = set(changed_filepaths).intersection([str(cluster_file)])
        if intersection:
            print_colour(
                f"This cluster.yaml file has been modified. Generating jobs to upgrade all hubs and the support chart on THIS cluster: {cluster_name}"
            )
            upgrade_all_hubs_on_this_cluster = True
            upgrade_support_on_this_cluster = True
            cluster_info["choice_reason"] = "cluster.yaml file was modified"
        else:
            upgrade_all_hubs_on_this_cluster = False
            upgrade_support_on_this_cluster = False

        # Generate a job matrix of all hubs that need upgrading on this cluster
        staging_hubs, prod_hubs = generate_hub_matrix_jobs(
            cluster_file,
            cluster_config,
            cluster_info,
            set(changed_filepaths),
            pr_labels,
            upgrade_all_hubs_on_this_cluster=upgrade_all_hubs_on_this_cluster,
            upgrade_all_hubs_on_all_clusters=upgrade_all_hubs_on_all_clusters,
        )
        staging_hub_matrix_jobs.extend(staging_hubs)
        prod_hub_matrix_jobs.extend(prod_hubs)

        # Generate a job matrix for support chart upgrades
        support_matrix_jobs.extend(
            generate_support_matrix_jobs(
                cluster_file,
                cluster_config,
                cluster_info,
                set(changed_filepaths),
                pr_labels,
                upgrade_support_on_this_cluster=upgrade_support_on_this_cluster,
                upgrade_support_on_all_clusters=upgrade_support_on_all_clusters,
            )
        )

    # Clean up the matrix jobs
    staging_hub_matrix_jobs = assign_staging_jobs_for_missing_clusters(
        staging_hub_matrix_jobs, prod_hub_matrix_jobs
    )
    # Pretty print the jobs using rich
    pretty_print_matrix_jobs(
        staging_hub_matrix_jobs, prod_hub_matrix_jobs, support_matrix_jobs
    )

    # The existence of the CI environment variable is an indication that we are running
    # in an GitHub Actions workflow
    # https://docs.github.com/en/actions/using-workflows/workflow-syntax-for-github-actions#example-defining-outputs-for-a-job
    # This will avoid errors trying to set CI output variables in an environment that
    # doesn't exist.
    ci_env = os.environ.get("CI", False)
    # More info on GITHUB_OUTPUT: https://docs.github.com/en/actions/writing-workflows/choosing-what-your-workflow-does/passing-information-between-jobs
    output_file = os.getenv("GITHUB_OUTPUT")
    if ci_env:
        # Add these matrix jobs as output variables for use in another job
        with open(output_file, "a") as f:
            f.write(f"support-jobs={json.dumps(support_matrix_jobs)}\n")
            f.write(f"staging-jobs={json.dumps(staging_hub_matrix_jobs)}\n")
            f.write(f"prod-jobs={json.dumps(prod_hub_matrix_jobs)}\n")

        # Don't bother generating a comment if all of the matrices are empty
        if support_matrix_jobs or staging_hub_matrix_jobs or prod_hub_matrix_jobs:
            # Generate Markdown tables from the job matrices and write them to a file
            # for use in another job
            create_markdown_comment(
                support_matrix_jobs, staging_hub_matrix_jobs, prod_hub_matrix_jobs
            )
