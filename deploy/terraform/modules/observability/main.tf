# Alarms of the platform, all to one encrypted SNS topic:
#   - the API: 5xx answers of the targets and of the ALB, p99 latency,
#     unhealthy targets (ALB metrics);
#   - the money: a team's available budget (plinth_team_available, per team,
#     from the CloudWatch agent sidecar of modules/ecs_api, namespace Plinth)
#     below its threshold, and refusals for lack of budget
#     (plinth_allocations_total{outcome="budget_exceeded"});
#   - the database: CPU and free storage.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  actions = [aws_sns_topic.alarms.arn]
  alb_dims = {
    LoadBalancer = var.alb_arn_suffix
    TargetGroup  = var.target_group_arn_suffix
  }
}

# The API's and the database's alarms: one resource, a map of specs.
locals {
  alarms = {
    api-5xx = {
      description = "Plinth API tasks answered 5xx (a failed store, a crash): more than ${var.max_5xx_per_5min} in 5 minutes"
      namespace   = "AWS/ApplicationELB", metric = "HTTPCode_Target_5XX_Count", dimensions = local.alb_dims
      statistic   = "Sum", period = 300, periods = 1, threshold = var.max_5xx_per_5min, below = false
    }
    alb-5xx = {
      description = "The ALB itself answered 5xx (no healthy task, timeouts)"
      namespace   = "AWS/ApplicationELB", metric = "HTTPCode_ELB_5XX_Count", dimensions = { LoadBalancer = var.alb_arn_suffix }
      statistic   = "Sum", period = 300, periods = 1, threshold = var.max_5xx_per_5min, below = false
    }
    api-latency-p99 = {
      description = "p99 response time of the Plinth API above ${var.p99_latency_seconds} s for 15 minutes"
      namespace   = "AWS/ApplicationELB", metric = "TargetResponseTime", dimensions = local.alb_dims
      statistic   = "p99", period = 300, periods = 3, threshold = var.p99_latency_seconds, below = false
    }
    api-unhealthy-targets = {
      description = "A Plinth API task fails /readyz (database unreachable, draining)"
      namespace   = "AWS/ApplicationELB", metric = "UnHealthyHostCount", dimensions = local.alb_dims
      statistic   = "Maximum", period = 60, periods = 5, threshold = 0, below = false
    }
    db-cpu = {
      description = "PostgreSQL CPU above 80% for 15 minutes"
      namespace   = "AWS/RDS", metric = "CPUUtilization", dimensions = { DBInstanceIdentifier = var.db_instance_id }
      statistic   = "Average", period = 300, periods = 3, threshold = 80, below = false
    }
    db-free-storage = {
      description = "PostgreSQL free storage below 5 GiB"
      namespace   = "AWS/RDS", metric = "FreeStorageSpace", dimensions = { DBInstanceIdentifier = var.db_instance_id }
      statistic   = "Minimum", period = 300, periods = 1, threshold = 5 * 1024 * 1024 * 1024, below = true
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = local.alarms
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = startswith(each.value.statistic, "p") ? null : each.value.statistic
  extended_statistic  = startswith(each.value.statistic, "p") ? each.value.statistic : null
  period              = each.value.period
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = each.value.below ? "LessThanThreshold" : "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  ok_actions          = local.actions
  tags                = var.tags
}

# plinth_team_available is in currency units (docs/cost-visibility.md).
resource "aws_cloudwatch_metric_alarm" "team_budget_low" {
  for_each            = var.team_min_available
  alarm_name          = "${var.name}-budget-low-${each.key}"
  alarm_description   = "Team ${each.key}: available budget below ${each.value} (plinth_team_available)"
  namespace           = "Plinth"
  metric_name         = "plinth_team_available"
  dimensions          = { team = each.key }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value
  comparison_operator = "LessThanThreshold"
  # no data = the scraper or the API is down: the 5xx/unhealthy alarms cover it
  treat_missing_data = "missing"
  alarm_actions      = local.actions
  ok_actions         = local.actions
  tags               = var.tags
}

resource "aws_cloudwatch_metric_alarm" "budget_refusals" {
  alarm_name          = "${var.name}-budget-refusals"
  alarm_description   = "More than ${var.max_budget_refusals_per_hour} allocations refused for lack of budget in an hour"
  namespace           = "Plinth"
  metric_name         = "plinth_allocations_total"
  dimensions          = { outcome = "budget_exceeded" }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.max_budget_refusals_per_hour
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.actions
  tags                = var.tags
}
