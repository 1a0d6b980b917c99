package chaos

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// directory is the driver's connection to the LDAP server under test. The
// server is restarted under it: an operation that fails for want of the
// server is retried on a new connection until it succeeds (at most
// retryFor), so that the driver always knows what it did.
type directory struct {
	url, bindDN, bindPW string
	conn                *ldap.Conn
	retries             int // operations retried after the server went away
}

// retryFor bounds how long one operation waits for the directory.
const retryFor = 2 * time.Minute

// transient reports whether err means the server is (re)starting or
// unreachable, rather than that the operation is wrong.
func transient(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return true
	}
	switch le.ResultCode {
	case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultTimeout,
		ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultOther, ldap.LDAPResultTimeLimitExceeded:
		return true
	}
	return le.Err != nil && strings.Contains(le.Err.Error(), "connection closed")
}

// do runs op, redialling while the server is away. After a retry, an error
// whose code is in done means the lost attempt did reach the server (an add
// answered "already exists", a delete "no such object"): success.
func (d *directory) do(op func(*ldap.Conn) error, done ...uint16) error {
	deadline := time.Now().Add(retryFor)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := d.dial()
		if err == nil {
			err = op(d.conn)
			if err == nil {
				return nil
			}
			if attempt > 1 && slices.ContainsFunc(done, func(c uint16) bool { return ldap.IsErrorWithCode(err, c) }) {
				return nil
			}
			if !transient(err) {
				return err
			}
			d.conn.Close()
			d.conn = nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("directory unavailable for %v: %w", retryFor, err)
		}
		if attempt == 1 {
			d.retries++
		}
		time.Sleep(wait)
		wait = min(wait*2, 2*time.Second)
	}
}

func (d *directory) dial() error {
	if d.conn != nil {
		return nil
	}
	c, err := ldap.DialURL(d.url, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(d.bindDN, d.bindPW); err != nil {
		c.Close()
		return err
	}
	d.conn = c
	return nil
}

func (d *directory) close() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// group is a groupOfNames the driver made. seq orders groups: a group only
// ever contains groups made before it, so nesting has no cycles.
type group struct {
	cn  string
	seq int
}

// driver makes random changes under a test subtree (ou=People, ou=Groups
// and ou=Outside, which no class takes) and keeps a model of what is there
// to choose its targets. The model only guides the choice: the expected
// state is read from the directory at the end.
type driver struct {
	dir                           *directory
	rng                           *rand.Rand
	base, people, groups, outside string
	placeholder                   string // groupOfNames needs a member: a DN no entry has

	inScope  []string // uids under ou=People
	outScope []string // uids under ou=Outside
	deleted  []string // DNs of deleted users, for member adds that race a delete
	grps     []group
	seq      int
	counts   map[string]int // changes made, by kind
	refint   int            // group modifies that follow a rename, move or delete
	errs     []string       // operations the directory refused for another reason than an outage
}

func newDriver(dir *directory, base string, rng *rand.Rand) *driver {
	return &driver{
		dir: dir, rng: rng, base: base,
		people: "ou=People," + base, groups: "ou=Groups," + base, outside: "ou=Outside," + base,
		placeholder: "cn=placeholder," + base,
		counts:      map[string]int{},
	}
}

func (d *driver) userDN(uid string, inScope bool) string {
	if inScope {
		return "uid=" + uid + "," + d.people
	}
	return "uid=" + uid + "," + d.outside
}

func (d *driver) groupDN(cn string) string { return "cn=" + cn + "," + d.groups }

func (d *driver) next(prefix string) string {
	d.seq++
	return fmt.Sprintf("%s%d", prefix, d.seq)
}

// fail records an operation the directory refused for a reason other than
// an outage: a fault of the driver, reported by the test.
func (d *driver) fail(what string, err error) {
	if err != nil {
		d.errs = append(d.errs, what+": "+err.Error())
	}
}

// seedOUs makes ou=Outside beside the subtree's ou=People and ou=Groups.
func (d *driver) seedOUs() error {
	req := ldap.NewAddRequest(d.outside, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	req.Attribute("ou", []string{"Outside"})
	return d.dir.do(func(c *ldap.Conn) error { return c.Add(req) }, ldap.LDAPResultEntryAlreadyExists)
}

// seed adds the initial population.
func (d *driver) seed(users, groups int) {
	for range users {
		d.addUser(true)
	}
	for range groups {
		d.addGroup(10)
	}
}

var (
	givenNames = []string{"Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Ines", "José"}
	surnames   = []string{"Lee", "Martin", "Nguyen", "O'Brien", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Ünal"}
	titles     = []string{"Engineer", "Manager", "Analyst", "Director", "Intern"}
)

func (d *driver) pick(list []string) string { return list[d.rng.Intn(len(list))] }

func (d *driver) mail(uid string) string {
	// mixed case: the pipe lower-cases it
	return fmt.Sprintf("%s.%s@Example.COM", strings.ToUpper(uid[:1])+uid[1:], d.pick([]string{"A", "b", "Cc"}))
}

func (d *driver) addUser(inScope bool) {
	uid := d.next("u")
	dn := d.userDN(uid, inScope)
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	given, sn := d.pick(givenNames), d.pick(surnames)
	req.Attribute("cn", []string{given + " " + sn + " " + uid})
	req.Attribute("sn", []string{sn})
	req.Attribute("givenName", []string{given})
	req.Attribute("mail", []string{d.mail(uid)})
	if d.rng.Intn(2) == 0 {
		req.Attribute("title", []string{d.pick(titles)})
	}
	err := d.dir.do(func(c *ldap.Conn) error { return c.Add(req) }, ldap.LDAPResultEntryAlreadyExists)
	d.fail("add "+dn, err)
	if err != nil {
		return
	}
	if inScope {
		d.inScope = append(d.inScope, uid)
		d.counts["add"]++
	} else {
		d.outScope = append(d.outScope, uid)
		d.counts["add-outside"]++
	}
}

func (d *driver) addGroup(members int) {
	cn := d.next("g")
	dn := d.groupDN(cn)
	vals := []string{d.placeholder}
	for range members {
		if len(d.inScope) > 0 {
			m := d.userDN(d.pick(d.inScope), true)
			if !slices.Contains(vals, m) {
				vals = append(vals, m)
			}
		}
	}
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "groupOfNames"})
	req.Attribute("cn", []string{cn})
	req.Attribute("member", vals)
	err := d.dir.do(func(c *ldap.Conn) error { return c.Add(req) }, ldap.LDAPResultEntryAlreadyExists)
	d.fail("add "+dn, err)
	if err == nil {
		d.grps = append(d.grps, group{cn: cn, seq: d.seq})
		d.counts["group-add"]++
	}
}

// step makes one random change.
func (d *driver) step() {
	r := d.rng.Intn(100)
	switch {
	case r < 15 || len(d.inScope) < 5:
		d.addUser(d.rng.Intn(20) != 0)
	case r < 45:
		d.modifyUser()
	case r < 51:
		d.renameUser()
	case r < 56:
		d.moveOut()
	case r < 61:
		d.moveBack()
	case r < 69:
		d.deleteUser()
	case r < 84:
		d.memberAdd()
	case r < 94:
		d.memberRemove()
	case r < 96:
		d.addGroup(d.rng.Intn(6))
	case r < 98:
		d.renameGroup()
	default:
		d.deleteGroup()
	}
}

// takeUser removes and returns a random uid of list.
func (d *driver) takeUser(list *[]string) string {
	i := d.rng.Intn(len(*list))
	uid := (*list)[i]
	*list = slices.Delete(*list, i, i+1)
	return uid
}

func (d *driver) modifyUser() {
	inScope := len(d.outScope) == 0 || d.rng.Intn(10) != 0
	list := d.inScope
	if !inScope {
		list = d.outScope
	}
	uid := d.pick(list)
	dn := d.userDN(uid, inScope)
	req := ldap.NewModifyRequest(dn, nil)
	for _, a := range []string{"mail", "title", "givenName", "sn", "displayName", "description"} {
		if d.rng.Intn(3) != 0 {
			continue
		}
		switch {
		case (a == "title" || a == "displayName" || a == "description") && d.rng.Intn(3) == 0:
			req.Replace(a, nil) // remove it (no error when absent)
		case a == "mail":
			req.Replace(a, []string{d.mail(d.next("m"))})
		case a == "givenName":
			req.Replace(a, []string{d.pick(givenNames)})
		case a == "sn":
			req.Replace(a, []string{d.pick(surnames)})
		case a == "title":
			req.Replace(a, []string{d.pick(titles)})
		default:
			req.Replace(a, []string{d.next(a + " ")})
		}
	}
	if len(req.Changes) == 0 {
		req.Replace("title", []string{d.pick(titles)})
	}
	d.fail("modify "+dn, d.dir.do(func(c *ldap.Conn) error { return c.Modify(req) }))
	if inScope {
		d.counts["modify"]++
	} else {
		d.counts["modify-outside"]++
	}
}

// moved follows a rename, move or delete of oldDN as the referential
// integrity plugin of a production directory would: each group naming it
// names newDN instead ("" after a delete). Without it a renamed member
// would stay in the SCIM group while its group names a DN that no longer
// exists, and the final directory could not say what SCIM must hold.
func (d *driver) moved(oldDN, newDN string) {
	var res *ldap.SearchResult
	err := d.dir.do(func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(ldap.NewSearchRequest(d.groups, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(member="+ldap.EscapeFilter(oldDN)+")", []string{"1.1"}, nil))
		return err
	})
	d.fail("search members "+oldDN, err)
	if err != nil {
		return
	}
	for _, e := range res.Entries {
		req := ldap.NewModifyRequest(e.DN, nil)
		req.Delete("member", []string{oldDN})
		if newDN != "" {
			req.Add("member", []string{newDN})
		}
		d.fail("refint "+e.DN, d.dir.do(func(c *ldap.Conn) error { return c.Modify(req) },
			ldap.LDAPResultNoSuchAttribute, ldap.LDAPResultAttributeOrValueExists))
		d.refint++
	}
}

func (d *driver) renameUser() {
	old := d.takeUser(&d.inScope)
	uid := d.next("u")
	oldDN := d.userDN(old, true)
	req := ldap.NewModifyDNRequest(oldDN, "uid="+uid, true, "")
	err := d.dir.do(func(c *ldap.Conn) error { return c.ModifyDN(req) }, ldap.LDAPResultNoSuchObject)
	d.fail("rename "+oldDN, err)
	if err != nil {
		d.inScope = append(d.inScope, old)
		return
	}
	d.inScope = append(d.inScope, uid)
	d.counts["rename"]++
	d.moved(oldDN, d.userDN(uid, true))
}

func (d *driver) moveOut() {
	uid := d.takeUser(&d.inScope)
	oldDN := d.userDN(uid, true)
	req := ldap.NewModifyDNRequest(oldDN, "uid="+uid, true, d.outside)
	err := d.dir.do(func(c *ldap.Conn) error { return c.ModifyDN(req) }, ldap.LDAPResultNoSuchObject)
	d.fail("move out "+oldDN, err)
	if err != nil {
		d.inScope = append(d.inScope, uid)
		return
	}
	d.outScope = append(d.outScope, uid)
	d.counts["move-out"]++
	d.moved(oldDN, d.userDN(uid, false))
}

func (d *driver) moveBack() {
	if len(d.outScope) == 0 {
		d.moveOut()
		return
	}
	uid := d.takeUser(&d.outScope)
	oldDN := d.userDN(uid, false)
	req := ldap.NewModifyDNRequest(oldDN, "uid="+uid, true, d.people)
	err := d.dir.do(func(c *ldap.Conn) error { return c.ModifyDN(req) }, ldap.LDAPResultNoSuchObject)
	d.fail("move back "+oldDN, err)
	if err != nil {
		d.outScope = append(d.outScope, uid)
		return
	}
	d.inScope = append(d.inScope, uid)
	d.counts["move-back"]++
	d.moved(oldDN, d.userDN(uid, true))
}

func (d *driver) deleteUser() {
	inScope := len(d.outScope) == 0 || d.rng.Intn(5) != 0
	list := &d.inScope
	if !inScope {
		list = &d.outScope
	}
	uid := d.takeUser(list)
	dn := d.userDN(uid, inScope)
	err := d.dir.do(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) }, ldap.LDAPResultNoSuchObject)
	d.fail("delete "+dn, err)
	if err != nil {
		*list = append(*list, uid)
		return
	}
	d.deleted = append(d.deleted, dn)
	d.counts["delete"]++
	d.moved(dn, "")
}

func (d *driver) pickGroup() group { return d.grps[d.rng.Intn(len(d.grps))] }

func (d *driver) memberAdd() {
	if len(d.grps) == 0 {
		d.addGroup(3)
		return
	}
	g := d.pickGroup()
	var m string
	switch r := d.rng.Intn(20); {
	case r == 0 && len(d.deleted) > 0:
		// a member deleted a moment ago: the add raced the delete
		m = d.deleted[len(d.deleted)-1-d.rng.Intn(min(len(d.deleted), 5))]
	case r == 1:
		var older []group
		for _, o := range d.grps {
			if o.seq < g.seq {
				older = append(older, o)
			}
		}
		if len(older) > 0 {
			m = d.groupDN(older[d.rng.Intn(len(older))].cn)
			break
		}
		fallthrough
	default:
		m = d.userDN(d.pick(d.inScope), true)
	}
	dn := d.groupDN(g.cn)
	req := ldap.NewModifyRequest(dn, nil)
	req.Add("member", []string{m})
	err := d.dir.do(func(c *ldap.Conn) error { return c.Modify(req) })
	if ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
		err = nil // already a member: a no-op the model could not foresee
	}
	d.fail("member add "+dn, err)
	d.counts["member-add"]++
}

func (d *driver) memberRemove() {
	if len(d.grps) == 0 {
		d.addGroup(3)
		return
	}
	g := d.pickGroup()
	dn := d.groupDN(g.cn)
	var res *ldap.SearchResult
	err := d.dir.do(func(c *ldap.Conn) error {
		var err error
		res, err = c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"member"}, nil))
		return err
	})
	d.fail("read "+dn, err)
	if err != nil || len(res.Entries) == 0 {
		return
	}
	var members []string
	for _, m := range res.Entries[0].GetAttributeValues("member") {
		if !strings.EqualFold(m, d.placeholder) {
			members = append(members, m)
		}
	}
	if len(members) == 0 {
		d.memberAdd()
		return
	}
	m := members[d.rng.Intn(len(members))]
	req := ldap.NewModifyRequest(dn, nil)
	req.Delete("member", []string{m})
	d.fail("member remove "+dn, d.dir.do(func(c *ldap.Conn) error { return c.Modify(req) }, ldap.LDAPResultNoSuchAttribute))
	d.counts["member-remove"]++
}

func (d *driver) renameGroup() {
	if len(d.grps) == 0 {
		d.addGroup(3)
		return
	}
	i := d.rng.Intn(len(d.grps))
	g := d.grps[i]
	cn := d.next("g")
	oldDN := d.groupDN(g.cn)
	req := ldap.NewModifyDNRequest(oldDN, "cn="+cn, true, "")
	err := d.dir.do(func(c *ldap.Conn) error { return c.ModifyDN(req) }, ldap.LDAPResultNoSuchObject)
	d.fail("rename "+oldDN, err)
	if err != nil {
		return
	}
	d.grps[i].cn = cn
	d.counts["group-rename"]++
	d.moved(oldDN, d.groupDN(cn))
}

func (d *driver) deleteGroup() {
	if len(d.grps) <= 3 {
		d.addGroup(3)
		return
	}
	i := d.rng.Intn(len(d.grps))
	dn := d.groupDN(d.grps[i].cn)
	err := d.dir.do(func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) }, ldap.LDAPResultNoSuchObject)
	d.fail("delete "+dn, err)
	if err != nil {
		return
	}
	d.grps = slices.Delete(d.grps, i, i+1)
	d.counts["group-delete"]++
	d.moved(dn, "")
}
