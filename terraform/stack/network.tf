# The VPC and who may talk to whom. Compute and data stores live in private subnets with no
# route to the internet; AWS APIs are reached through VPC endpoints. Each client has its own
# security group, and each store admits only the clients that use it, on its one port.

locals {
  # The AWS APIs that VPC-attached compute calls (S3 and DynamoDB use gateway endpoints):
  # secrets (ingest, producer, worker), SNS (ingest alerts), SQS and EC2 (the tracker's EC2
  # worker), ECR and CloudWatch Logs (Fargate image pulls and the awslogs driver).
  interface_endpoints = ["secretsmanager", "sns", "sqs", "ec2", "ecr.api", "ecr.dkr", "logs"]
  tags                = { Project = "pipeline-harness" }
}

module "network" {
  source                  = "../modules/network"
  name                    = "pipeline"
  cidr_block              = var.vpc_cidr
  interface_endpoints     = local.interface_endpoints
  flow_log_retention_days = var.log_retention_days
  tags                    = local.tags
}

locals {
  # client -> store -> port: the only connections inside the VPC besides HTTPS to the endpoints.
  clients = {
    ingest_lambdas = "data_processor and report_generator Lambdas"
    producer       = "broker producer Lambda"
    broker_worker  = "broker worker ECS tasks"
    batch_task     = "batch processor ECS task"
    tracker_worker = "tracker EC2 workers"
  }
  stores = {
    database = { port = 5432, description = "RDS PostgreSQL", clients = ["ingest_lambdas"] }
    mq       = { port = 5671, description = "Amazon MQ (AMQPS)", clients = ["producer", "broker_worker"] }
    cache    = { port = 6379, description = "ElastiCache Redis (TLS)", clients = ["producer"] }
    efs      = { port = 2049, description = "EFS (NFS over TLS)", clients = ["broker_worker"] }
  }
  grants = merge([
    for store, spec in local.stores : {
      for client in spec.clients : "${client}-${store}" => { client = client, store = store, port = spec.port }
    }
  ]...)
}

resource "aws_security_group" "client" {
  for_each    = local.clients
  name        = "pipeline-${replace(each.key, "_", "-")}"
  description = "Outbound for the ${each.value}"
  vpc_id      = module.network.vpc_id
  # checkov:skip=CKV2_AWS_5: all five groups are used; checkov cannot follow three: the broker worker ECS service (nested module), the batch Scheduler RunTask, and EC2 workers the tracker Lambda launches
  tags = local.tags
}

resource "aws_security_group" "store" {
  for_each    = local.stores
  name        = "pipeline-${each.key}"
  description = "${each.value.description}: inbound from its clients only"
  vpc_id      = module.network.vpc_id
  tags        = local.tags
}

# Every client reaches the AWS APIs over HTTPS: interface endpoints inside the VPC, and the
# S3/DynamoDB gateway endpoints (AWS's public ranges, routed to the endpoint; no internet route exists).
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = local.clients
  security_group_id = aws_security_group.client[each.key].id
  description       = "HTTPS to the AWS APIs through the VPC endpoints"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "to_store" {
  for_each                     = local.grants
  security_group_id            = aws_security_group.client[each.value.client].id
  referenced_security_group_id = aws_security_group.store[each.value.store].id
  description                  = "${each.value.client} to ${each.value.store}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "from_client" {
  for_each                     = local.grants
  security_group_id            = aws_security_group.store[each.value.store].id
  referenced_security_group_id = aws_security_group.client[each.value.client].id
  description                  = "${each.value.store} from ${each.value.client}"
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}
