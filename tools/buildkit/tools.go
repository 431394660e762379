//go:build tools

// Package tools pins the BuildKit commands that the offline stand-in image is
// built from. buildkit's own go.mod has `exclude` directives, so
// `go install github.com/moby/buildkit/cmd/buildkitd@v0.26.0` is refused;
// requiring the module from here and running `go build` in this module works.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
