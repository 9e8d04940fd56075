# tickpath sweep, provider "aws", one candidate: a subnet in the availability zone chosen by its
# zone ID (names like ap-northeast-1a map to different physical zones in each account), a
# placement group, and probe instances that install the sweep's own tickpath wheel (checksummed),
# run `tickpath probe` and upload the JSON (or the reason the boot failed).
# Instances require IMDSv2, accept no inbound traffic (SSM for access), terminate when they shut
# down, and shut themselves down at the TTL even if nobody ever destroys them.

terraform {
  required_version = ">= 1.4.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region of the sweep, e.g. ap-northeast-1."
}

variable "sweep_id" {
  type        = string
  description = "Sweep identifier; names the instances and the results prefix."
}

variable "candidate" {
  type        = string
  description = "Candidate name (AZ ID and instance type); names the results object."
}

variable "index" {
  type        = number
  description = "Candidate number: picks this candidate's /24 inside the sweep VPC."
}

variable "az_id" {
  type        = string
  description = "Availability zone ID, e.g. apne1-az4."
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type to probe from, e.g. c6in.xlarge."
}

variable "instance_count" {
  type        = number
  description = "Number of probe instances of this candidate."
  default     = 1
}

variable "placement_strategy" {
  type        = string
  description = "Placement group strategy; none creates no placement group."
  default     = "cluster"
  validation {
    condition     = contains(["cluster", "spread", "partition", "none"], var.placement_strategy)
    error_message = "placement_strategy must be cluster, spread, partition or none."
  }
}

variable "market" {
  type        = string
  description = "spot or on-demand capacity."
  default     = "on-demand"
  validation {
    condition     = contains(["spot", "on-demand"], var.market)
    error_message = "market must be spot or on-demand."
  }
}

variable "ttl_minutes" {
  type        = number
  description = "Minutes after boot when an instance shuts itself down (and terminates)."
}

variable "probe_cmdline" {
  type        = string
  description = "Shell-quoted arguments after `tickpath` that run the probe and print JSON."
}

variable "wheel_key" {
  type        = string
  description = "Object key of the tickpath wheel the sweep uploaded (artifacts/<sweep-id>/...whl)."
}

variable "wheel_sha256" {
  type        = string
  description = "SHA-256 of the wheel; the boot script refuses any other file."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.wheel_sha256))
    error_message = "wheel_sha256 must be 64 lowercase hex digits."
  }
}

variable "constraints_key" {
  type        = string
  description = "Object key of the pip constraints file pinning the wheel's dependencies."
}

variable "constraints_sha256" {
  type        = string
  description = "SHA-256 of the constraints file."
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.constraints_sha256))
    error_message = "constraints_sha256 must be 64 lowercase hex digits."
  }
}

variable "python" {
  type        = string
  description = "Python the wheel is built for, installed with dnf (python3.11 for a cp311 wheel)."
  default     = "python3.11"
}

variable "s3_endpoint" {
  type        = string
  description = "S3 endpoint override for the boot script (AWS_ENDPOINT_URL); empty for AWS itself."
  default     = ""
}

variable "tune_host" {
  type        = bool
  description = "Run `tickpath tune --apply` before the probe."
  default     = true
}

variable "power_off_after_upload" {
  type        = bool
  description = "Shut down as soon as the probe JSON is uploaded; only when no winner is kept (keep = 0)."
  default     = false
}

variable "results_bucket" {
  type        = string
  description = "Private bucket the probe JSON is uploaded to (shared module output)."
}

variable "instance_profile" {
  type        = string
  description = "Instance profile whose role may only put results/<sweep-id>/* objects."
}

variable "vpc_id" {
  type        = string
  description = "The sweep VPC (shared module output)."
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the sweep VPC; this candidate takes a /24 of it."
}

variable "route_table_id" {
  type        = string
  description = "Route table of the sweep VPC (shared module output)."
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource; tickpath:sweep-id is what cleanup searches for."
}

provider "aws" {
  region = var.region
  default_tags {
    tags = var.tags
  }
}

data "aws_availability_zones" "chosen" {
  state = "available"
  filter {
    name   = "zone-id"
    values = [var.az_id]
  }
}

data "aws_ec2_instance_type" "chosen" {
  instance_type = var.instance_type
}

locals {
  arch = contains(data.aws_ec2_instance_type.chosen.supported_architectures, "arm64") ? "arm64" : "x86_64"
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${local.arch}"
}

resource "aws_subnet" "probe" {
  vpc_id                  = var.vpc_id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, var.index)
  availability_zone       = one(data.aws_availability_zones.chosen.names)
  map_public_ip_on_launch = true
  tags                    = merge(var.tags, { Name = "tickpath-${var.candidate}" })

  lifecycle {
    precondition {
      condition     = length(data.aws_availability_zones.chosen.names) == 1
      error_message = "Availability zone ID ${var.az_id} is not available in ${var.region}."
    }
  }
}

resource "aws_route_table_association" "probe" {
  subnet_id      = aws_subnet.probe.id
  route_table_id = var.route_table_id
}

resource "aws_security_group" "probe" {
  name        = "tickpath-${var.sweep_id}-${var.index}"
  description = "tickpath probe: egress only, access through SSM"
  vpc_id      = var.vpc_id
  # No ingress block at all: nothing can connect in.
  egress {
    description = "probe traffic to the exchange, package installs, S3 upload"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
  tags = merge(var.tags, { Name = "tickpath-${var.candidate}" })
}

resource "aws_placement_group" "probe" {
  count    = var.placement_strategy == "none" ? 0 : 1
  name     = "tickpath-${var.sweep_id}-${var.index}"
  strategy = var.placement_strategy
  tags     = var.tags
}

resource "aws_instance" "probe" {
  count                                = var.instance_count
  ami                                  = data.aws_ssm_parameter.al2023.value
  instance_type                        = var.instance_type
  subnet_id                            = aws_subnet.probe.id
  vpc_security_group_ids               = [aws_security_group.probe.id]
  iam_instance_profile                 = var.instance_profile
  placement_group                      = var.placement_strategy == "none" ? null : aws_placement_group.probe[0].name
  instance_initiated_shutdown_behavior = "terminate"
  user_data_replace_on_change          = true

  user_data = templatefile("${path.module}/user_data.sh", {
    sweep_id           = var.sweep_id
    candidate          = var.candidate
    instance_index     = count.index
    bucket             = var.results_bucket
    region             = var.region
    ttl_minutes        = var.ttl_minutes
    probe_cmdline      = var.probe_cmdline
    wheel_key          = var.wheel_key
    wheel_sha256       = var.wheel_sha256
    constraints_key    = var.constraints_key
    constraints_sha256 = var.constraints_sha256
    python             = var.python
    s3_endpoint        = var.s3_endpoint
    tune               = var.tune_host
    power_off_after    = var.power_off_after_upload
  })

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  dynamic "instance_market_options" {
    for_each = var.market == "spot" ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "one-time"
        instance_interruption_behavior = "terminate"
      }
    }
  }

  root_block_device {
    encrypted   = true
    volume_size = 16
    volume_type = "gp3"
  }

  tags        = merge(var.tags, { Name = "tickpath-${var.candidate}-${count.index}" })
  volume_tags = var.tags
}

output "instance_ids" {
  description = "IDs of this candidate's probe instances, in index order."
  value       = aws_instance.probe[*].id
}

output "availability_zone" {
  description = "Availability zone name the AZ ID maps to in this account."
  value       = aws_subnet.probe.availability_zone
}
