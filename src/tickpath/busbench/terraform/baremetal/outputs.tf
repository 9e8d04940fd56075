output "public_ips" {
  description = "SSH address of each role."
  value       = { for role, h in var.hosts : role => h.ssh }
}

output "private_ips" {
  description = "Address NATS traffic uses between the three."
  value       = { for role, h in var.hosts : role => h.private }
}

output "ssh_user" {
  description = "Login user."
  value       = var.ssh_user
}
