"""The namespace lab (see topology.py): a real-kernel IPFire box with clients, ISP, internet, VPN."""

from lab.topology import Lab, Probe, cleanup_stale

__all__ = ["Lab", "Probe", "cleanup_stale"]
