"""The conformance suite: checks any etcd-API server over the network, never importing impl."""
