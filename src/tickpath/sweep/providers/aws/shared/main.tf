# tickpath sweep, provider "aws", shared part (one per sweep): the network every candidate's subnet
# lives in, the private results bucket, and the role probe instances use, which may only put
# objects under results/<sweep-id>/ and get the sweep's wheel under artifacts/<sweep-id>/.

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
  description = "Sweep identifier; names the bucket, role and network."
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource; tickpath:sweep-id is what cleanup searches for."
}

variable "results_expiry_days" {
  type        = number
  description = "Days after which result objects expire from the bucket."
  default     = 7
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the sweep VPC; each candidate takes a /24 of it."
  default     = "10.42.0.0/16"
}

provider "aws" {
  region = var.region
  default_tags {
    tags = var.tags
  }
}

data "aws_partition" "current" {}

resource "aws_vpc" "sweep" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = "tickpath-${var.sweep_id}" })
}

resource "aws_internet_gateway" "sweep" {
  vpc_id = aws_vpc.sweep.id
  tags   = merge(var.tags, { Name = "tickpath-${var.sweep_id}" })
}

resource "aws_route_table" "sweep" {
  vpc_id = aws_vpc.sweep.id
  # Egress to the exchange and to package mirrors only; nothing routes inbound without a listener.
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.sweep.id
  }
  tags = merge(var.tags, { Name = "tickpath-${var.sweep_id}" })
}

resource "aws_s3_bucket" "results" {
  bucket        = "tickpath-${var.sweep_id}"
  force_destroy = true
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  bucket = aws_s3_bucket.results.id
  rule {
    id     = "expire-results"
    status = "Enabled"
    filter {
      prefix = "results/"
    }
    expiration {
      days = var.results_expiry_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }
}

resource "aws_iam_role" "probe" {
  name = "tickpath-probe-${var.sweep_id}"
  path = "/tickpath/"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

# The only data permissions a probe machine has: write its own sweep's results and read the wheel
# the sweep uploaded for it. No list, no other prefix, no other bucket.
resource "aws_iam_role_policy" "results_write" {
  name = "tickpath-results-write"
  role = aws_iam_role.probe.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = ["${aws_s3_bucket.results.arn}/results/${var.sweep_id}/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${aws_s3_bucket.results.arn}/artifacts/${var.sweep_id}/*"]
      },
    ]
  })
}

# Access for people is through SSM Session Manager, so no inbound port is ever opened.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.probe.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "probe" {
  name = "tickpath-probe-${var.sweep_id}"
  path = "/tickpath/"
  role = aws_iam_role.probe.name
  tags = var.tags
}

output "results_bucket" {
  description = "Name of the private results bucket."
  value       = aws_s3_bucket.results.bucket
}

output "instance_profile" {
  description = "Instance profile for the probe instances."
  value       = aws_iam_instance_profile.probe.name
}

output "vpc_id" {
  description = "ID of the sweep VPC."
  value       = aws_vpc.sweep.id
}

output "vpc_cidr" {
  description = "CIDR block of the sweep VPC."
  value       = aws_vpc.sweep.cidr_block
}

output "route_table_id" {
  description = "Route table with the internet route, for the candidates' subnets."
  value       = aws_route_table.sweep.id
}
