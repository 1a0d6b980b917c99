// Package scripts ships the example pipe scripts, and embeds the demo pipe
// and its directory so that the scimsync binary runs the demo with no files
// around it.
package scripts

import "embed"

// Demo holds demo.pipe and demo/people.ldif.
//
//go:embed demo.pipe demo/people.ldif
var Demo embed.FS

// DemoPipe is the name of the demo script inside Demo.
const DemoPipe = "demo.pipe"
