//go:build tools

// Package tools pins the MinIO server that `make tools` builds.
package tools

import _ "github.com/minio/minio"
