package client

// Bodies captured from a live IPFS Cluster 1.1.6 peer (the REST API
// specification, appendix C) and the shapes of its section 4, as a real
// server sends them (json.Encoder output: one object and a newline).
const (
	peerA = "12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"
	peerB = "12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"

	helloV0 = "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
	helloV1 = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
	otherV0 = "Qmb3HYrshA4Bdd5gC4soLTt13Lq6gscZ8VdDWz5zWmzvy8"

	fixtureID = `{"id":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","addresses":["/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"],"cluster_peers":["12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"],"cluster_peers_addresses":[],"version":"1.1.6","commit":"","rpc_protocol_version":"/ipfscluster/1.0/rpc","error":"","ipfs":{"id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","addresses":[],"error":""},"peername":"vm"}` + "\n"

	// A peer that could not be contacted, as listed by GET /peers.
	fixtureIDError = `{"id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","addresses":null,"cluster_peers":null,"cluster_peers_addresses":null,"version":"","commit":"","rpc_protocol_version":"","error":"context deadline exceeded","ipfs":{"addresses":null,"error":""},"peername":""}` + "\n"

	fixtureVersion = `{"version":"1.1.6"}` + "\n"

	fixtureAllocation = `{"replication_factor_min":-1,"replication_factor_max":-1,"name":"","mode":"recursive","shard_size":104857600,"user_allocations":null,"expire_at":"0001-01-01T00:00:00Z","metadata":null,"pin_update":"Qmb3HYrshA4Bdd5gC4soLTt13Lq6gscZ8VdDWz5zWmzvy8","origins":[],"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","type":"pin","allocations":[],"max_depth":-1,"reference":null,"timestamp":"2026-11-23T18:59:51Z"}` + "\n"

	// The answer of POST /pins/ipfs/<cid> (spec appendix A.3).
	fixturePinResponse = `{"replication_factor_min":2,"replication_factor_max":3,"name":"myfile","mode":"direct","shard_size":0,"user_allocations":["12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"],"expire_at":"2027-01-01T00:00:00Z","metadata":{"kind":"text"},"pin_update":null,"origins":null,"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","type":"pin","allocations":["12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"],"max_depth":-1,"reference":null,"timestamp":"2024-05-06T12:00:00.123456789+02:00"}` + "\n"

	fixtureStatus = `{"cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","name":"","allocations":[],"origins":[],"created":"2026-11-23T18:59:51Z","metadata":null,"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peername":"vm","ipfs_peer_id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","status":"pinned","timestamp":"2026-11-23T18:59:51Z","error":"","attempt_count":0,"priority_pin":false}}}` + "\n"

	fixtureStatusB = `{"cid":"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am","name":"x","allocations":[],"origins":[],"created":"2026-11-23T18:59:51Z","metadata":{"k":"v"},"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peername":"vm","ipfs_peer_id":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","ipfs_peer_addresses":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"],"status":"pin_error","timestamp":"2026-11-23T18:59:51Z","error":"context canceled","attempt_count":3,"priority_pin":true}}}` + "\n"

	fixtureMetrics = `[{"name":"freespace","peer":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","value":"9146652128","expire":1795460427323146357,"valid":true,"weight":9146652128,"partitionable":false,"received_at":1795460397323379946}]` + "\n"

	fixtureMetricNames = `["ping","freespace","tag:group","pinqueue"]` + "\n"

	fixtureAlerts = `[{"name":"ping","peer":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri","value":"","expire":1715000030000000000,"valid":true,"weight":0,"partitionable":false,"received_at":1715000000000000000,"triggered_at":"2024-05-06T12:00:31.5+02:00"}]` + "\n"

	fixtureGraph = `{"cluster_id":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","id_to_peername":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":"vm"},"ipfs_links":{"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri":[]},"cluster_links":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":[]},"cluster_trust_links":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":true},"cluster_to_ipfs":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":"12D3KooWAGCz9jEGsXPcU5RKBXUSxZHZcyAUvRXHhp16mp8todri"}}` + "\n"

	fixtureRepoGC = `{"peer_map":{"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX":{"peer":"12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX","peername":"vm","keys":[{"key":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"},{"key":null,"error":"block in use"}]}}}` + "\n"

	fixtureBandwidth = `{"/ipfscluster/1.0/rpc":{"total_in":1024,"total_out":2048,"rate_in":1.5,"rate_out":2.25},"/meshsub/1.1.0":{"total_in":10,"total_out":20,"rate_in":0,"rate_out":0}}` + "\n"

	// POST /add?cid-version=1, then with progress=true (appendix C).
	fixtureAddV1     = `{"name":"hello.txt","cid":"bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am","size":6,"allocations":["12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"]}` + "\n"
	fixtureAddProgr  = `{"name":"","cid":null,"bytes":6}` + "\n"
	fixtureAddV0     = `{"name":"hello.txt","cid":"QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN","size":14,"allocations":["12D3KooWCqTHSWzEt9L2spQK2Ng2arbnaA6tqXZhxx8nUT9ygigX"]}` + "\n"
	fixtureErrNotPin = `{"code":404,"message":"pin is not part of the pinset"}` + "\n"
	fixtureErrFilter = `{"code":400,"message":"invalid filter value"}` + "\n"
	fixtureToken     = `{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJ1c2VyIn0.sig"}` + "\n"
)
