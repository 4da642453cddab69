# Plinth's API on ECS Fargate behind an ALB, as the platform design runs it:
#   ALB (public subnets, HTTPS only, TLS 1.2+, WAF) -> target group (/readyz)
#   -> Fargate tasks in the private subnets: the plinth container (non-root,
#   read-only root filesystem, PLINTH_DATABASE_URL and PLINTH_ADMIN_TOKEN
#   from Secrets Manager) and a CloudWatch agent sidecar that scrapes
#   Plinth's /metrics and publishes the budget metrics to CloudWatch (the
#   "Plinth" namespace the alarms of modules/observability read).
# The service scales on CPU and on requests per target.  The execution role
# may only pull this image, write these log groups and read this secret; the
# task role may only put metrics into the Plinth namespace.

data "aws_region" "this" {}

locals {
  region = data.aws_region.this.region
  port   = 8080
  # CloudWatch agent: scrape 127.0.0.1:8080/metrics (same task, same network
  # namespace) and turn the plinth_* series into CloudWatch metrics (EMF).
  prometheus_config = yamlencode({
    global = { scrape_interval = "60s", scrape_timeout = "10s" }
    scrape_configs = [{
      job_name       = "plinth"
      metrics_path   = "/metrics"
      static_configs = [{ targets = ["127.0.0.1:${local.port}"] }]
    }]
  })
  agent_config = jsonencode({
    logs = {
      metrics_collected = {
        prometheus = {
          log_group_name         = aws_cloudwatch_log_group.metrics.name
          prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
          emf_processor = {
            metric_namespace = "Plinth"
            metric_declaration = [
              {
                source_labels    = ["job"]
                label_matcher    = "^plinth$"
                dimensions       = [["team"]]
                metric_selectors = ["^plinth_team_(budget|spent|reserved|available)$"]
              },
              {
                source_labels    = ["job"]
                label_matcher    = "^plinth$"
                dimensions       = [["outcome"]]
                metric_selectors = ["^plinth_allocations_total$"]
              },
            ]
          }
        }
      }
      force_flush_interval = 60
    }
  })
}

# --- logs ------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "api" {
  name              = "/plinth/${var.name}/api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/plinth/${var.name}/prometheus"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- cluster ------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enhanced"
  }
  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]
  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- IAM ------------------------------------------------------------------------

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Used by ECS itself to start the task: pull the image, create log streams,
# read the secret into the environment.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-api-execution"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # this action has no resource-level permissions
  }
  statement {
    sid       = "PullPlinthImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [var.ecr_repository_arn]
  }
  statement {
    sid       = "WriteTaskLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.api.arn}:*"]
  }
  statement {
    sid       = "ReadAppSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.app.arn]
  }
  statement {
    sid       = "DecryptAppSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-plinth-api"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Assumed by the containers: only the CloudWatch agent needs AWS, to put the
# scraped metrics (as EMF log events) into its own log group.
resource "aws_iam_role" "task" {
  name               = "${var.name}-api-task"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "EmfMetrics"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.metrics.arn, "${aws_cloudwatch_log_group.metrics.arn}:*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "publish-plinth-metrics"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# --- the application secret -------------------------------------------------------

# JSON {"database_url": "postgres://plinth:…@host:5432/plinth?sslmode=require",
#       "admin_token": "…"}, written by the operator (docs/deploy.md, step 4):
# Terraform creates only the container, so no secret value is in its state.
resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:the operator writes this value (a database role's URL and Plinth's admin token); rotation is the documented procedure in docs/deploy.md (new value, then a new ECS deployment), no Lambda can rotate Plinth's token
  name                    = "${var.name}/plinth-api"
  description             = "Plinth API: PostgreSQL URL of the plinth role and the admin token"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
  tags                    = var.tags
}

# --- task definition and service ---------------------------------------------------

resource "aws_ecs_task_definition" "api" {
  #checkov:skip=CKV_AWS_336:the plinth container's root filesystem IS read-only; the CloudWatch agent sidecar writes its generated config and state under /opt/aws in its image, is non-essential and holds no credentials but the task role's logs:PutLogEvents on one log group
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # task-local scratch (the root filesystem is read-only)
  volume {
    name = "data"
  }

  container_definitions = jsonencode([
    {
      name      = "plinth"
      image     = "${var.ecr_repository_url}:${var.image_tag}"
      essential = true
      command   = ["serve", "--listen", "0.0.0.0:${local.port}"]
      portMappings = [{
        containerPort = local.port
        protocol      = "tcp"
      }]
      environment = [
        { name = "PLINTH_THREADS", value = tostring(var.threads) },
        # the GitOps work repository (docs/gitops.md); the ledger is in PostgreSQL
        { name = "PLINTH_DATA", value = "/var/lib/plinth" },
      ]
      mountPoints = [{ sourceVolume = "data", containerPath = "/var/lib/plinth", readOnly = false }]
      secrets = [
        { name = "PLINTH_DATABASE_URL", valueFrom = "${aws_secretsmanager_secret.app.arn}:database_url::" },
        { name = "PLINTH_ADMIN_TOKEN", valueFrom = "${aws_secretsmanager_secret.app.arn}:admin_token::" },
      ]
      readonlyRootFilesystem = true
      privileged             = false
      linuxParameters = {
        capabilities       = { drop = ["ALL"] }
        initProcessEnabled = true
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.api.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "plinth"
        }
      }
    },
    {
      name      = "cloudwatch-agent"
      image     = var.cloudwatch_agent_image
      essential = false
      environment = [
        { name = "CW_CONFIG_CONTENT", value = local.agent_config },
        { name = "PROMETHEUS_CONFIG_CONTENT", value = local.prometheus_config },
      ]
      readonlyRootFilesystem = false # the agent writes its state under /opt/aws
      privileged             = false
      linuxParameters        = { capabilities = { drop = ["ALL"] } }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.api.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "cloudwatch-agent"
        }
      }
    },
  ])
  tags = var.tags
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-api-tasks"
  description = "Plinth API tasks: HTTP from the ALB only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "Plinth HTTP from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

# Egress: HTTPS to the VPC endpoints and AWS APIs, PostgreSQL in the VPC.
resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, CloudWatch Logs)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_postgres" {
  security_group_id = aws_security_group.tasks.id
  description       = "PostgreSQL in the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_ecs_service" "api" {
  name                               = "plinth-api"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.api.arn
  desired_count                      = var.min_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }
  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "plinth"
    container_port   = local.port
  }
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  tags = var.tags

  depends_on = [aws_lb_listener.https]
  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }
}

# --- autoscaling ---------------------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${var.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension
  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.api.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}

# --- load balancer ----------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name}-api-alb"
  description = "Plinth API load balancer: HTTPS from the allowed clients"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from ${each.key}"
  cidr_ipv4         = each.key
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "to the Plinth tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
}

resource "aws_lb" "api" {
  #checkov:skip=CKV_AWS_91:ALB access logs need an SSE-S3 (not KMS) bucket; every request is logged instead by Plinth itself (request log to the api log group) and by WAF (aws-waf-logs-*, KMS-encrypted)
  name                       = "${var.name}-api"
  load_balancer_type         = "application"
  internal                   = var.internal
  subnets                    = var.internal ? var.private_subnet_ids : var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = 60
  tags                       = var.tags
}

resource "aws_lb_target_group" "api" {
  name        = "${var.name}-api"
  port        = local.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  # a task stops getting new requests, then has this long to finish its own
  deregistration_delay = 30
  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  tags = var.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
  tags = var.tags
}

# --- WAF ---------------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "api" {
  name  = "${var.name}-api"
  scope = "REGIONAL"
  default_action {
    allow {}
  }
  # AWS managed rule groups written out, not generated: static checks
  # (checkov CKV_AWS_192) must see the known-bad-inputs group
  rule {
    name     = "common"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "common"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "known-bad-inputs"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }
  rule {
    name     = "rate-limit-per-ip"
    priority = 3
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.requests_per_ip_per_5min
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-api"
    sampled_requests_enabled   = true
  }
  tags = var.tags
}

resource "aws_wafv2_web_acl_association" "api" {
  resource_arn = aws_lb.api.arn
  web_acl_arn  = aws_wafv2_web_acl.api.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  # WAF requires this prefix
  name              = "aws-waf-logs-${var.name}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  resource_arn            = aws_wafv2_web_acl.api.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  # the token is a credential: never log it
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}
