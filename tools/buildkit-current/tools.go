//go:build tools

// Package tools pins the BuildKit commands that the offline stand-in image is
// built from. buildkit's own go.mod has `exclude` directives, so
// `go install github.com/moby/buildkit/cmd/buildkitd@v0.34.2` is refused;
// requiring the module from here and running `go build` in this module works.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"

	// The CNI plugins BuildKit's bridge network mode runs (the official image ships them as
	// buildkit-cni-*): each RUN gets a network namespace of its own, not the node's.
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/meta/firewall"
)
