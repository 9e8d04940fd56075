variable "run_id" {
  description = "Identifier of this benchmark run; set by tickpath."
  type        = string
}

variable "hosts" {
  description = "The three existing machines: SSH address and the private address NATS uses."
  type = object({
    server_a = object({ ssh = string, private = string })
    server_b = object({ ssh = string, private = string })
    client   = object({ ssh = string, private = string })
  })
}

variable "ssh_user" {
  description = "Login user with passwordless sudo on all three machines."
  type        = string
  default     = "root"
}

variable "ssh_private_key_path" {
  description = "Private key for that user (never copied anywhere)."
  type        = string
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
