// Command allocator-roundrobin is a pincluster allocator plugin: build it,
// name it in the "plugins" section of service.json, and the peer runs it.
package main

import "github.com/pincluster/pincluster/plugins/sdk"

func main() { sdk.Serve(New()) }
