package lang

import "testing"

func TestIsHashedPassword(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", true},
		{"{PBKDF2-SHA512}10000$c2FsdA$aGFzaA", true},
		{"{CRYPT}$6$rounds=5000$salt$hash", true},
		{"{SSHA512}abc", true},
		{"{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", true},
		{"{PBKDF2_SHA256}AAAIAA", true},
		{"{CLEAR}secret", true}, // a directory's prefix, not the password
		{"{md5}X03MO1qnZdYdgyfeuILPmQ==", true},
		{"MD5$c2FsdA==$X03MO1qnZdYdgyfeuILPmQ==", true}, // RFC 3112 authPassword
		{"SHA256$c2FsdA==$n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", true},
		{"correct horse battery staple", false},
		{"P$ssw0rd$1", false},      // two $ signs, no hash scheme
		{"SHA$salt$short", false},  // too short to be a digest
		{"{}empty-scheme", false},  //
		{"{SSHA}", false},          // nothing after the scheme
		{"{not a scheme}x", false}, // spaces
		{"S3cret{SSHA}", false},    // not at the start
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := isHashedPassword(tt.in); got != tt.want {
				t.Errorf("isHashedPassword(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
