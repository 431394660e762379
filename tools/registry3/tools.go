//go:build tools

// The registry 3 stand-in is built from this module (scripts/lab-env.sh): distribution's own
// cmd/registry at the version go.mod pins.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
