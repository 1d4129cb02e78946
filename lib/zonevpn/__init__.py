"""zonevpn: send chosen IPFire zones out through chosen WireGuard net-to-net tunnels, with a kill switch.

Layout: readers (ipfire, settings) -> model -> planner (plan) -> desired state (state)
-> reconciler (engine, with the kernel back-ends routing and firewall). Shells: cli, cgi-bin, initscripts.
"""

__version__ = "0.1.0"
