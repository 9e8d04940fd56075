# Three machines (server A, server B, client) in one cluster placement group, in a VPC made for
# this run. Inbound traffic: NATS client port from the client to both servers, the route port
# between the two servers, SSH from the operator's address only. No 0.0.0.0/0 inbound anywhere.
# TLS material and NATS configs are copied over SSH by tickpath after apply (never in user data,
# which the instance metadata would expose, and never committed).

locals {
  tags = {
    Project   = "tickpath"
    Component = "busbench"
    RunId     = var.run_id
    ManagedBy = "terraform"
  }
  roles = {
    server_a = var.instance_type_server_a
    server_b = var.instance_type_server_b
    client   = var.instance_type_client
  }
  ami = var.ami_id != "" ? var.ami_id : data.aws_ami.debian.id
}

data "aws_ami" "debian" {
  most_recent = true
  owners      = ["136693071363"] # Debian
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_vpc" "run" {
  cidr_block           = var.vpc_cidr
  enable_dns_hostnames = true
  tags                 = { Name = "busbench-${var.run_id}" }
}

resource "aws_internet_gateway" "run" {
  vpc_id = aws_vpc.run.id
}

resource "aws_subnet" "run" {
  vpc_id                  = aws_vpc.run.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 1)
  availability_zone       = var.availability_zone
  map_public_ip_on_launch = true
}

resource "aws_route_table" "run" {
  vpc_id = aws_vpc.run.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.run.id
  }
}

resource "aws_route_table_association" "run" {
  subnet_id      = aws_subnet.run.id
  route_table_id = aws_route_table.run.id
}

resource "aws_placement_group" "triangle" {
  name     = "busbench-${var.run_id}"
  strategy = "cluster"
}

resource "aws_key_pair" "run" {
  key_name   = "busbench-${var.run_id}"
  public_key = var.ssh_public_key
}

resource "aws_security_group" "servers" {
  name        = "busbench-${var.run_id}-servers"
  description = "NATS servers: client port from the client, routes between servers, SSH from operator"
  vpc_id      = aws_vpc.run.id
}

resource "aws_security_group" "client" {
  name        = "busbench-${var.run_id}-client"
  description = "busbench client: SSH from operator only"
  vpc_id      = aws_vpc.run.id
}

resource "aws_vpc_security_group_ingress_rule" "nats_client_port" {
  security_group_id            = aws_security_group.servers.id
  referenced_security_group_id = aws_security_group.client.id
  ip_protocol                  = "tcp"
  from_port                    = var.client_port
  to_port                      = var.client_port
  description                  = "NATS clients (busbench client)"
}

resource "aws_vpc_security_group_ingress_rule" "nats_routes" {
  security_group_id            = aws_security_group.servers.id
  referenced_security_group_id = aws_security_group.servers.id
  ip_protocol                  = "tcp"
  from_port                    = var.route_port
  to_port                      = var.route_port
  description                  = "NATS routes between server A and server B"
}

resource "aws_vpc_security_group_ingress_rule" "ssh_servers" {
  security_group_id = aws_security_group.servers.id
  cidr_ipv4         = var.operator_cidr
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  description       = "SSH from the operator"
}

resource "aws_vpc_security_group_ingress_rule" "ssh_client" {
  security_group_id = aws_security_group.client.id
  cidr_ipv4         = var.operator_cidr
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  description       = "SSH from the operator"
}

# Outbound stays open so the machines can install packages; nothing inbound depends on it.
resource "aws_vpc_security_group_egress_rule" "servers_out" {
  security_group_id = aws_security_group.servers.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "client_out" {
  security_group_id = aws_security_group.client.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_instance" "node" {
  for_each               = local.roles
  ami                    = local.ami
  instance_type          = each.value
  subnet_id              = aws_subnet.run.id
  placement_group        = aws_placement_group.triangle.id
  key_name               = aws_key_pair.run.key_name
  vpc_security_group_ids = [each.key == "client" ? aws_security_group.client.id : aws_security_group.servers.id]
  user_data              = file("${path.module}/../cloud-init.sh")

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_size = 16
    volume_type = "gp3"
    encrypted   = true
  }

  tags = { Name = "busbench-${var.run_id}-${each.key}", Role = each.key }
}
