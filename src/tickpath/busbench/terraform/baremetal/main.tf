# Bare-metal triangle: prepares three existing machines (packages, firewall) and undoes it on
# destroy. The firewall (an nftables table of its own) admits the NATS client port only from the
# client and the route port only from the other server; everything else is left as it was.

locals {
  roles = {
    server_a = { peer = var.hosts.server_b.private, server = true }
    server_b = { peer = var.hosts.server_a.private, server = true }
    client   = { peer = "", server = false }
  }
  nft_rules = {
    for role, r in local.roles : role => r.server ? join("\n", [
      "table inet busbench_${var.run_id} {",
      "  chain input {",
      "    type filter hook input priority -10; policy accept;",
      "    tcp dport ${var.client_port} ip saddr != ${var.hosts.client.private} drop",
      "    tcp dport ${var.route_port} ip saddr != ${r.peer} drop",
      "  }",
      "}",
    ]) : ""
  }
}

resource "terraform_data" "node" {
  for_each = local.roles

  input = {
    ssh      = var.hosts[each.key].ssh
    user     = var.ssh_user
    key_path = var.ssh_private_key_path
    table    = "busbench_${var.run_id}"
  }

  connection {
    type        = "ssh"
    host        = self.input.ssh
    user        = self.input.user
    private_key = file(self.input.key_path)
  }

  provisioner "file" {
    source      = "${path.module}/../cloud-init.sh"
    destination = "/tmp/busbench-cloud-init.sh"
  }

  provisioner "file" {
    content     = local.nft_rules[each.key]
    destination = "/tmp/busbench.nft"
  }

  provisioner "remote-exec" {
    inline = [
      "sudo sh /tmp/busbench-cloud-init.sh",
      "if [ -s /tmp/busbench.nft ]; then sudo nft -f /tmp/busbench.nft; fi",
    ]
  }

  provisioner "remote-exec" {
    when = destroy
    inline = [
      "sudo nft delete table inet ${self.input.table} 2>/dev/null || true",
      "if [ -f /tmp/busbench/nats.pid ]; then sudo kill $(cat /tmp/busbench/nats.pid) || true; fi",
      "rm -rf /tmp/busbench /tmp/busbench.nft /tmp/busbench-cloud-init.sh",
    ]
  }
}
