terraform {
  # Only Terraform's built-in provider: works wherever the machines already exist (any bare-metal
  # provider or your own racks) and needs no provider download.
  required_version = ">= 1.5.0"
}
