package main

import (
	"fmt"
	"io"

	"github.com/scimsync/scimsync/lang"
)

// warnInsecure tells, for check, what run and every command that connects
// log loudly when they connect: a script that turns TLS certificate
// verification off. check connects to nothing, so without this the
// setting would pass review silently.
func warnInsecure(w io.Writer, path string, p *lang.Pipe) {
	if p.Source.Insecure && p.Source.Kind != "ldif" {
		fmt.Fprintf(w, "%s:%d:%d: warning: source: insecure = true turns TLS certificate verification off for the LDAP "+
			"connection: anyone on the network path can read the bind password and the directory's data, or pose as the "+
			"directory; set caFile to the CA that signed the server's certificate instead\n", path, p.Source.Pos.Line, p.Source.Pos.Col)
	}
	if p.SCIM.Insecure {
		fmt.Fprintf(w, "%s: warning: scim: insecure = true turns TLS certificate verification off for the SCIM service: "+
			"anyone on the network path can read and change the SCIM traffic and the token or password in it; "+
			"set caFile to the CA that signed the service's certificate instead\n", path)
	}
}
