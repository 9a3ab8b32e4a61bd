"""The GPU runners: ECS on GPU EC2, one task per GPU, ComfyUI beside the runner, scaled on the backlog."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy, TimeZone
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.bundling import PROJECT_ROOT
from infra.comfyui_files import catalog_statements, runner_folder_environment, share_comfyui_folders
from infra.config import ServiceConfig
from infra.data import DataStore, object_arns
from infra.environment import service_environment
from infra.gpu_boot import add_warm_start, boot_commands, root_volume
from infra.models import cache_block_device, cache_boot_commands, mount_cache
from infra.pools import PoolQueueSet
from shared.names import Env, S3Prefix
from shared.pools import PoolSpec
from shared.settings import RunnerSettings

RUNNER_DOCKERFILE = "gpu_runner/Dockerfile"
# What the runner image is built from; the rest of the project stays out of the build context.
RUNNER_IMAGE_CONTEXT = ("shared", "gpu_runner", "templates", "requirements.txt")
COMFYUI_HEALTH_PATH = "/system_stats"
# Placeholder that keeps synthesis going when no image is named; deploying is refused with an error.
_MISSING_IMAGE = "comfyui-image-not-configured"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?:(?::(?P<tag>[\w.-]+))|(?:@(?P<digest>sha256:[0-9a-f]{64})))?$"
)
# CloudWatch namespace and metrics of Container Insights, which the cluster turns on.
_INSIGHTS_NAMESPACE = "ECS/ContainerInsights"
# New runners start before old ones stop (each old one stops only once its job is done: task protection),
# so a deployment briefly needs this share of the desired count: the GPU group leaves room for it.
DEPLOYMENT_MIN_HEALTHY_PERCENT = 100
DEPLOYMENT_MAX_PERCENT = 200


def runner_image_excludes() -> list[str]:
    """Docker-style excludes: everything but the runner's build context."""
    return ["*", *(f"!{path}" for path in RUNNER_IMAGE_CONTEXT), "**/__pycache__", "**/*.pyc"]


class GpuRunners(Construct):
    """VPC, cluster, GPU capacity, the two-container task, the service and its scaling."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        data: DataStore,
        settings: Mapping[str, str],
        alarm_topic: sns.ITopic | None = None,
        pool: PoolSpec | None = None,
        queues: PoolQueueSet | None = None,
        network: tuple[ec2.IVpc, ecs.Cluster] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._alarm_topic = alarm_topic
        # A declared pool shares the default pool's VPC and cluster; capacity, task and scaling are its own.
        self.pool = pool or config.default_pool
        self.queues = queues or PoolQueueSet(data.queue, data.dead_letter_queue)
        if network is not None:
            self.vpc, self.cluster = network
        else:
            self._network(data)
        self._comfyui_repository: ecr.IRepository | None = None
        self.capacity_provider = self._capacity()
        self.cluster.add_asg_capacity_provider(self.capacity_provider)
        # After the cluster's own ECS_CLUSTER line.
        self.user_data.add_commands(*boot_commands(config), *cache_boot_commands(config))
        if self.pool.spot:
            # ECS drains a Spot instance on its interruption notice: its tasks get SIGTERM at once.
            self.user_data.add_commands("echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config")
        self._task(data, settings)

    def _network(self, data: DataStore) -> None:
        config = self._config
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="runners", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
            ],
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(data.log_bucket, "vpc-flow-logs/"),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        # Outputs and job items go through free gateway endpoints rather than the NAT gateway.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB)

        self.cluster = ecs.Cluster(
            self, "Cluster", vpc=self.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )

    def _task(self, data: DataStore, settings: Mapping[str, str]) -> None:
        config = self._config
        self.task_definition = ecs.Ec2TaskDefinition(
            self,
            "Task",
            # awsvpc: both containers share one network namespace: the runner reaches ComfyUI on localhost.
            network_mode=ecs.NetworkMode.AWS_VPC,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.comfyui = self._comfyui_container()
        self.runner = self._runner_container(
            {**settings, **runner_folder_environment(), "GPU_PRICE_PER_HOUR": str(config.gpu_price_per_hour)}
        )
        # ComfyUI's input, output and temp folders are volumes of the task, mounted in both containers.
        share_comfyui_folders(
            self.task_definition,
            self.comfyui,
            self.runner,
            {
                "input": config.comfyui_input_dir,
                "output": config.comfyui_output_dir,
                "temp": config.comfyui_temp_dir,
            },
        )
        # One model cache per instance, on its fastest disk, shared by all its runners (the N tasks of an
        # N-GPU instance read one copy of each model).
        mount_cache(self.task_definition, self.comfyui, self.runner)
        self.runner.add_container_dependencies(
            ecs.ContainerDependency(
                container=self.comfyui, condition=ecs.ContainerDependencyCondition.HEALTHY
            )
        )
        self._grant_runner(data)

        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="GPU runner tasks: outbound to AWS APIs and image registries only, nothing inbound",
            allow_all_outbound=True,
        )
        self.service = ecs.Ec2Service(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=self.pool.min_runners,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(
                    capacity_provider=self.capacity_provider.capacity_provider_name, weight=1
                )
            ],
            security_groups=[self.security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            min_healthy_percent=DEPLOYMENT_MIN_HEALTHY_PERCENT,
            max_healthy_percent=DEPLOYMENT_MAX_PERCENT,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            enable_ecs_managed_tags=True,
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
        )
        # CloudFormation may otherwise create the service before the cluster knows its capacity provider
        # (and delete the association first on teardown), which fails the deploy. The association is made
        # by an aspect at synthesis, inside the cluster: depending on the cluster reaches it too.
        self.service.node.add_dependency(self.cluster)
        self._scaling(data)
        if config.pre_pull_image and self._comfyui_repository is not None:
            self._comfyui_repository.grant_pull(self.instance_role)

    # -- capacity ------------------------------------------------------------------------------------

    def _capacity(self) -> ecs.AsgCapacityProvider:
        config = self._config
        pool = self.pool
        instance_types = [ec2.InstanceType(name) for name in pool.instance_types]
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="GPU container instances: the ECS agent (policy added by the capacity provider)",
        )
        self.user_data = user_data = ec2.UserData.for_linux()
        self.launch_template = ec2.LaunchTemplate(
            self,
            "GpuLaunchTemplate",
            # The ECS-optimized Amazon Linux 2023 GPU AMI (NVIDIA driver, container toolkit, ECS agent).
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),
            instance_type=instance_types[0] if len(instance_types) == 1 else None,
            user_data=user_data,
            role=self.instance_role,
            security_group=ec2.SecurityGroup(
                self,
                "InstanceSecurityGroup",
                vpc=self.vpc,
                description="GPU container instances: outbound only",
                allow_all_outbound=True,
            ),
            require_imdsv2=True,
            # The runner container reads the Spot notice from the metadata service: one hop further.
            http_put_response_hop_limit=2 if pool.spot else None,
            detailed_monitoring=True,
            # The root volume holds the ComfyUI image and its models.
            block_devices=[
                root_volume(config),
                *filter(None, [cache_block_device(config, pool.instance_types)]),
            ],
        )
        mixed = None
        if len(instance_types) > 1 or pool.spot:
            mixed = autoscaling.MixedInstancesPolicy(
                launch_template=self.launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=instance_type)
                    for instance_type in instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_percentage_above_base_capacity=0 if pool.spot else 100,
                    # Spot from the pools least likely to be interrupted, at a low price.
                    spot_allocation_strategy=(
                        autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED if pool.spot else None
                    ),
                ),
            )
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "GpuInstances",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=self.launch_template if mixed is None else None,
            mixed_instances_policy=mixed,
            # ECS managed scaling moves the group; zero instances while there is no work, and room for a
            # deployment's new runners beside the old ones (one task per GPU instance).
            min_capacity=0,
            max_capacity=pool.max_instances * DEPLOYMENT_MAX_PERCENT // 100,
            notifications=(
                [autoscaling.NotificationConfiguration(topic=self._alarm_topic)]
                if self._alarm_topic
                else None
            ),
        )
        # Warm pools are the default pool's (EC2 Auto Scaling has none for Spot or mixed groups).
        self.warm_start = (
            add_warm_start(self, config, self.auto_scaling_group, self.instance_role)
            if pool is config.default_pool or pool.name == "default"
            else None
        )
        return ecs.AsgCapacityProvider(
            self,
            "GpuCapacity",
            auto_scaling_group=self.auto_scaling_group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            enable_managed_draining=True,
            target_capacity_percent=100,
            machine_image_type=ecs.MachineImageType.AMAZON_LINUX_2,
        )

    # -- containers ----------------------------------------------------------------------------------

    def _comfyui_image(self) -> ecs.ContainerImage:
        name = self._config.comfyui_image
        if not name:
            Annotations.of(self).add_error(
                "Name the ComfyUI image to run: cdk deploy -c comfyuiImage=<registry/repository:tag>"
            )
            return ecs.ContainerImage.from_registry(_MISSING_IMAGE)
        match = _ECR_IMAGE.match(name)
        if match is None:
            return ecs.ContainerImage.from_registry(name)
        # An ECR image: the execution role gets pull access to exactly that repository.
        repository = self._comfyui_repository = ecr.Repository.from_repository_attributes(
            self,
            "ComfyUiRepository",
            repository_arn=(
                f"arn:{Aws.PARTITION}:ecr:{match['region']}:{match['account']}:repository/{match['repo']}"
            ),
            repository_name=match["repo"],
        )
        return ecs.ContainerImage.from_ecr_repository(repository, match["digest"] or match["tag"] or "latest")

    def _comfyui_container(self) -> ecs.ContainerDefinition:
        port = self._config.comfyui_port
        url = f"http://localhost:{port}{COMFYUI_HEALTH_PATH}"
        # curl where the image has it, Python (which every ComfyUI image has) where it does not.
        probe = (
            f"curl -fsS -o /dev/null {url} || "
            f"python3 -c \"import urllib.request; urllib.request.urlopen('{url}', timeout=4)\" || exit 1"
        )
        return self.task_definition.add_container(
            "comfyui",
            image=self._comfyui_image(),
            gpu_count=1,
            essential=True,
            memory_reservation_mib=self._config.comfyui_memory_reservation_mib,
            health_check=ecs.HealthCheck(
                command=["CMD-SHELL", probe],
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                retries=4,
                # Pulling models and starting CUDA takes a while on a fresh instance.
                start_period=Duration.seconds(300),
            ),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="comfyui", log_group=self.log_group),
            # ECS stops the runner first (it depends on ComfyUI), so ComfyUI can finish the prompt in hand.
            stop_timeout=Duration.seconds(self._config.stop_timeout_seconds),
        )

    def _runner_container(self, settings: Mapping[str, str]) -> ecs.ContainerDefinition:
        image = ecs.ContainerImage.from_asset(
            str(PROJECT_ROOT),
            file=RUNNER_DOCKERFILE,
            exclude=runner_image_excludes(),
            # GPU instances are x86_64 whatever the Lambda architecture.
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        environment = service_environment(
            RunnerSettings, settings, log_level=self._config.log_level, sdk={Env.AWS_REGION: Aws.REGION}
        )
        return self.task_definition.add_container(
            "runner",
            image=image,
            essential=True,
            memory_reservation_mib=self._config.runner_memory_reservation_mib,
            environment=environment,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="runner", log_group=self.log_group),
            # The files the runner removes from the shared folders are ComfyUI's: it acts as ComfyUI's user.
            user=self._config.comfyui_user,
            stop_timeout=Duration.seconds(self._config.stop_timeout_seconds),
        )

    def _grant_runner(self, data: DataStore) -> None:
        role = self.task_definition.task_role
        statements: list[tuple[list[str], list[str]]] = [
            (
                ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                [q.queue_arn for q in self.queues.all()],
            ),
            (["dynamodb:GetItem", "dynamodb:UpdateItem"], [data.jobs_table.table_arn]),
            # Scale-in protection while a job is in hand, set through the ECS agent's endpoint with
            # the task's own credentials (gpu_runner/task_protection.py).
            (
                ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"],
                [f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:task/{self.cluster.cluster_name}/*"],
            ),
            # Fan-out reads a job's subscribers from its partition; a post that answers 410 Gone deletes
            # that one subscription.
            (["dynamodb:Query", "dynamodb:DeleteItem"], [data.connections_table.table_arn]),
            # The job's event log for late readers (gpu_runner/events.py): appended to, never read.
            (["dynamodb:PutItem"], [data.job_events_table.table_arn]),
            # Outputs are written, presigned for the terminal frame, and deleted again when the job cannot
            # be marked succeeded or a retry clears an earlier attempt's (listed first).
            (
                ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                [object_arns(data.bucket, S3Prefix.OUTPUTS)],
            ),
            # Also makes a missing upload a 404 (the job fails with input_error), not a 403.
            (["s3:ListBucket"], [data.bucket.bucket_arn]),
            (
                ["s3:GetObject"],
                [object_arns(data.bucket, S3Prefix.INPUTS), object_arns(data.bucket, S3Prefix.WORKFLOWS)],
            ),
        ]
        if self.pool.spot:
            # An interrupted job is sent again as a new message (gpu_runner/spot.py).
            statements.append((["sqs:SendMessage"], [q.queue_arn for q in self.queues.all()]))
        for actions, resources in statements:
            role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
        # Publishes what its ComfyUI reads from disk when it changed (read first to compare).
        for statement in catalog_statements(data.bucket, ["s3:GetObject", "s3:PutObject"]):
            role.add_to_principal_policy(statement)

    # -- scaling -------------------------------------------------------------------------------------

    def _scaling(self, data: DataStore) -> None:
        config = self._config
        self.scalable_target = appscaling.ScalableTarget(
            self,
            "TaskCount",
            service_namespace=appscaling.ServiceNamespace.ECS,
            resource_id=f"service/{self.cluster.cluster_name}/{self.service.service_name}",
            scalable_dimension="ecs:service:DesiredCount",
            min_capacity=self.pool.min_runners,
            max_capacity=self.pool.max_runners,
            # Application Auto Scaling's service-linked role for ECS, as ECS's own autoScaleTaskCount uses.
            role=iam.Role.from_role_arn(
                self,
                "ScalingRole",
                f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/aws-service-role/"
                "ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
            ),
        )
        service_dimensions = [
            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                name="ClusterName", value=self.cluster.cluster_name
            ),
            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                name="ServiceName", value=self.service.service_name
            ),
        ]
        lanes = [
            [
                appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                    name="QueueName", value=queue.queue_name
                )
            ]
            for queue in self.queues.all()
        ]

        def stat(
            query_id: str,
            namespace: str,
            name: str,
            dimensions: list[appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty],
        ) -> appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty:
            return appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id=query_id,
                return_data=False,
                metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                    metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                        namespace=namespace, metric_name=name, dimensions=dimensions
                    ),
                    stat="Maximum",
                ),
            )

        # The pool's own backlog, both lanes: the first lane's ids are the ones the template always had.
        backlog_stats = []
        for index, dimensions in enumerate(lanes):
            suffix = "" if index == 0 else str(index)
            backlog_stats += [
                stat(f"waiting{suffix}", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimensions),
                stat(f"inhand{suffix}", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dimensions),
            ]
        backlog = " + ".join(str(s.id) for s in backlog_stats)
        # Jobs per task = (waiting + in hand) / desired tasks. In-hand jobs count so that busy runners are
        # not scaled in; desired (not running) tasks so that GPU instances still booting are not added
        # again. With no tasks the quotient is undefined, and the wake-up policy below takes over.
        self.backlog_policy = appscaling.CfnScalingPolicy(
            self,
            "BacklogPerTask",
            policy_name=f"{Aws.STACK_NAME}-runner-backlog-per-task",
            policy_type="TargetTrackingScaling",
            scaling_target_id=self.scalable_target.scalable_target_id,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=config.target_jobs_per_runner,
                scale_out_cooldown=config.scale_out_cooldown_seconds,
                # Scale in slowly: a GPU instance takes minutes to come back.
                scale_in_cooldown=config.scale_in_cooldown_seconds,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[
                        *backlog_stats,
                        stat("desired", _INSIGHTS_NAMESPACE, "DesiredTaskCount", service_dimensions),
                        appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="jobspertask",
                            label="Jobs per runner task",
                            expression=f"({backlog}) / IF(FILL(desired, 0) > 0, FILL(desired, 0), 1)",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
        scheduled = config.scheduled_min_runners if self.pool.name == "default" else ()
        for index, minimum in enumerate(scheduled):
            self.scalable_target.scale_on_schedule(
                f"ScheduledMinimum{index}",
                schedule=appscaling.Schedule.expression(f"cron({minimum.cron})"),
                min_capacity=minimum.min_runners,
                time_zone=TimeZone.of(minimum.time_zone) if minimum.time_zone else None,
            )
        if self.pool.min_runners == 0:
            self._wake_from_zero()

    def _wake_from_zero(self) -> None:
        # Target tracking scales proportionally to the current count, so from zero it never moves:
        # this alarm sets one task when jobs wait and none is wanted, and target tracking goes on from there.
        desired = cloudwatch.Metric(
            namespace=_INSIGHTS_NAMESPACE,
            metric_name="DesiredTaskCount",
            dimensions_map={
                "ClusterName": self.cluster.cluster_name,
                "ServiceName": self.service.service_name,
            },
            statistic=cloudwatch.Stats.MAXIMUM,
            period=Duration.minutes(1),
        )
        waiting_lanes = {
            (
                "waiting" if index == 0 else f"waiting{index}"
            ): queue.metric_approximate_number_of_messages_visible(
                statistic=cloudwatch.Stats.MAXIMUM, period=Duration.minutes(1)
            )
            for index, queue in enumerate(self.queues.all())
        }
        self.wake_alarm = cloudwatch.Alarm(
            self,
            "WakeFromZero",
            alarm_description="Jobs are waiting and no GPU runner is wanted: start one",
            metric=cloudwatch.MathExpression(
                expression=f"IF(FILL(desired, 0) == 0, {' + '.join(waiting_lanes)}, 0)",
                using_metrics={"desired": desired, **waiting_lanes},
                label="Jobs waiting with no runner",
                period=Duration.minutes(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            # SQS publishes nothing for a queue that has been idle, and late when it wakes: no data is no
            # news, so the alarm keeps its state (and, in ALARM, keeps asking for the one runner).
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        action = appscaling.StepScalingAction(
            self,
            "WakeAction",
            scaling_target=self.scalable_target,
            # Exactly one, so that a repeated alarm while the first instance boots adds nothing.
            adjustment_type=appscaling.AdjustmentType.EXACT_CAPACITY,
            cooldown=Duration.minutes(1),
        )
        action.add_adjustment(adjustment=1, lower_bound=0)
        self.wake_alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(action))
