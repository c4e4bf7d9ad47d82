"""Drives opensigma with Apache libcloud's CloudSigma 2.0 driver, unchanged. Prints one JSON line per step."""
import json
import os
import sys
import time

import libcloud.security
from libcloud.compute.drivers.cloudsigma import CloudSigma_2_0_NodeDriver

libcloud.security.CA_CERTS_PATH = os.environ["CA_CERT"]
driver = CloudSigma_2_0_NodeDriver(
    os.environ["EMAIL"], os.environ["PASSWORD"], host="127.0.0.1", port=int(os.environ["PORT"])
)


def step(name, value):
    print(json.dumps({"step": name, "value": value}), flush=True)


def wait_state(node_id, state, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        node = driver.ex_get_node(node_id)
        if node.extra.get("status") == state or node.state == state:
            return node
        time.sleep(0.2)
    raise SystemExit("node %s never reached %s" % (node_id, state))


step("capabilities", sorted(driver.ex_list_capabilities().keys()))
step("nodes_before", [n.name for n in driver.list_nodes()])


drive = driver.ex_create_drive(name="libcloud-drive", size=1, media="disk")
step("drive", {"name": drive.name, "size": drive.size, "media": drive.media})
step("drives", sorted(d.name for d in driver.ex_list_user_drives()))

# A node with no image: libcloud's create_node needs a library image, so build the server by hand.
resp = driver.connection.request(
    action="/servers/",
    method="POST",
    data={"name": "libcloud-node", "cpu": 1000, "mem": 536870912, "vnc_password": "libcloud1",
          "nics": [{"ip_v4_conf": {"conf": "dhcp"}, "model": "virtio"}]},
).object
node = driver._to_node(data=resp["objects"][0])
step("node", {"name": node.name, "state": node.state})

node = driver.ex_attach_drive(node=node, drive=drive) and driver.ex_get_node(node.id)
step("attached", [d["drive"]["uuid"] == drive.id for d in node.extra["drives"]])

# (libcloud 3.4's ex_tag_resource never sends the new resource, against any cloud; tag at creation instead.)
tag = driver.ex_create_tag(name="libcloud-tag", resource_uuids=[node.id])
step("tag", tag.name)
step("tagged", [n.name for n in driver.list_nodes(ex_tag=tag)])

step("started", driver.ex_start_node(node))
node = wait_state(node.id, "running")
step("running", {"state": node.state, "public_ips": node.public_ips})

# Firewall policies: created with rules, listed, put on the node's public NIC (a GET-edit-PUT of its NICs). libcloud's
# ex_edit_node resends cpu in GHz and mem in MiB (cpu / 2000, mem / 1048576), which only a running server ignores.
policy = driver.ex_create_firewall_policy(name="libcloud-policy", rules=[
    {"action": "accept", "direction": "in", "ip_proto": "tcp", "dst_port": "22", "src_ip": "192.0.2.0/24"},
    {"action": "drop", "direction": "in", "ip_proto": "tcp", "dst_port": "22"},
])
step("policy", {"name": policy.name, "rules": [[r.action, r.direction, r.ip_proto, r.src_ip, r.dst_port] for r in policy.rules]})
step("policies", [p.name for p in driver.ex_list_firewall_policies()])
node = driver.ex_attach_firewall_policy(policy=policy, node=node)
step("firewalled", [(n["firewall_policy"] or {}).get("uuid") == policy.id for n in node.extra["nics"]])

step("groups", driver.ex_list_servers_availability_groups() != None)
step("stopped", driver.ex_stop_node(node))
node = wait_state(node.id, "stopped")

clone = driver.ex_clone_node(node=node, name="libcloud-clone")
step("clone", clone.name)
step("destroyed", driver.destroy_node(clone) and driver.destroy_node(node))
step("nodes_after", [n.name for n in driver.list_nodes()])
step("policy_deleted", driver.ex_delete_firewall_policy(policy))
step("policies_after", [p.name for p in driver.ex_list_firewall_policies()])

# create_node from a library image, the way libcloud users boot a server: clone, wait, resize, create, start.
images = driver.list_images()
step("images", len(images))
if images:
    disk = [i for i in images if i.extra.get("media") == "disk"] or images
    size = [s for s in driver.list_sizes() if s.ram <= 1024][0]
    node = driver.create_node(name="libcloud-from-image", size=size, image=disk[0])
    step("from_image", {"name": node.name, "drives": len(node.extra["drives"])})
    # create_node starts the server itself
    step("from_image_started", wait_state(node.id, "running").state == "running")
    driver.ex_stop_node(node)
    wait_state(node.id, "stopped")
    step("from_image_destroyed", driver.destroy_node(node, ex_delete_drives=True))
