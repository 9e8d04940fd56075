output "public_ips" {
  description = "Public address of each role (SSH from the operator)."
  value       = { for role, inst in aws_instance.node : role => inst.public_ip }
}

output "private_ips" {
  description = "Private address of each role (NATS traffic stays inside the placement group)."
  value       = { for role, inst in aws_instance.node : role => inst.private_ip }
}

output "ssh_user" {
  description = "Login user of the image."
  value       = "admin"
}
