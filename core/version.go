package core

// SoftwareVersion is pincluster's version, reported by GET /version and GET /id.
const SoftwareVersion = "0.1.0"

// RPCProtocolVersion names the peer-to-peer protocol reported in GET /id.
const RPCProtocolVersion = "/pincluster/0.1/rpc"
