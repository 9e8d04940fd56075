variable "region" {
  description = "AWS region of the triangle."
  type        = string
}

variable "availability_zone" {
  description = "Availability zone; the placement group keeps all three machines in it."
  type        = string
}

variable "run_id" {
  description = "Identifier of this benchmark run (tags, names); set by tickpath."
  type        = string
}

variable "operator_cidr" {
  description = "Where tickpath runs from (x.x.x.x/32): the only source allowed to SSH in."
  type        = string
  validation {
    condition     = can(cidrhost(var.operator_cidr, 0)) && !startswith(var.operator_cidr, "0.0.0.0/")
    error_message = "operator_cidr must be a real CIDR (your address /32), never 0.0.0.0/0."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key tickpath generated for this run."
  type        = string
}

variable "instance_type_server_a" {
  description = "Instance type of server A (publish side)."
  type        = string
  default     = "c6in.xlarge"
}

variable "instance_type_server_b" {
  description = "Instance type of server B (subscribe side)."
  type        = string
  default     = "c6in.xlarge"
}

variable "instance_type_client" {
  description = "Instance type of the client machine."
  type        = string
  default     = "c6in.xlarge"
}

variable "ami_id" {
  description = "AMI to boot; empty picks the newest Debian 12 amd64 image."
  type        = string
  default     = ""
}

variable "client_port" {
  description = "NATS client port on the servers."
  type        = number
  default     = 4222
}

variable "route_port" {
  description = "NATS cluster (route) port between the servers."
  type        = number
  default     = 6222
}

variable "vpc_cidr" {
  description = "Address range of the run's own VPC."
  type        = string
  default     = "10.77.0.0/16"
}
