// Package chaos holds the fault test of issue 11 (chaos_test.go): the
// scimsync binary syncs a private directory (slapd with syncrepl, 389-ds
// with cn=changelog) to a private SCIM server while a driver makes random
// LDAP changes, the engine is killed with SIGKILL, the directory is
// restarted and a fault proxy between the engine and the SCIM server answers
// some requests with 429, 500 or 503, delays others past the client's
// timeout and simulates an outage of more than 30 s. When the faults stop
// and the engine has caught up, the SCIM service must hold exactly the
// mapping of the final directory, read from the directory itself: nothing
// missing, extra, differing or duplicated, and no change parked.
//
// The package has no code outside its tests; this file only documents it.
// BENCHMARKS.md ("Fault (chaos) test") gives the commands, the settings
// (SCIMSYNC_CHAOS_SEED, SCIMSYNC_CHAOS_CHANGES, SCIMSYNC_CHAOS_LONG) and
// the figures.
package chaos
