// Pinned build of rclone with only what the tests and benchmarks use: the local, S3 and WebDAV
// backends and the copy, sync, check, mkdir, obscure and version commands. Debian's rclone
// (1.60) predates --webdav-pacer-min-sleep, whose 10 ms default spaces every WebDAV call of a
// transfer (three per small file) whatever the server could take.
package main

import (
	_ "github.com/rclone/rclone/backend/local"
	_ "github.com/rclone/rclone/backend/s3"
	_ "github.com/rclone/rclone/backend/webdav"
	"github.com/rclone/rclone/cmd"
	_ "github.com/rclone/rclone/cmd/check"
	_ "github.com/rclone/rclone/cmd/copy"
	_ "github.com/rclone/rclone/cmd/mkdir"
	_ "github.com/rclone/rclone/cmd/obscure"
	_ "github.com/rclone/rclone/cmd/sync"
	_ "github.com/rclone/rclone/cmd/version"
)

func main() {
	cmd.Main()
}
