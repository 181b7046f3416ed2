//go:build tools

// Package tools pins the upstream command the lab builds (see go.mod).
package tools

import _ "github.com/minio/minio"
