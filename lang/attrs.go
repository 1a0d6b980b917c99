package lang

import "strings"

// knownAttributes is the LDAP attribute vocabulary that expressions may name
// without declaring it: the user and group schemas of RFC 4519, RFC 2798
// (inetOrgPerson), RFC 4524 (COSINE), RFC 2307 (NIS), the operational
// attributes of RFC 4512 and RFC 4530, and the ones OpenLDAP, 389 Directory
// Server, PingDirectory and Active Directory add. A script names others in
// its source block: `attributes = ["myCustomAttr"]`. Names are matched
// case-insensitively; an unknown one is an error at load ("did you mean …").
var knownAttributes = strings.Fields(`
	aliasedObjectName associatedDomain audio buildingName businessCategory c carLicense cn co
	dc departmentNumber description destinationIndicator displayName distinguishedName
	dnQualifier drink employeeNumber employeeType enhancedSearchGuide facsimileTelephoneNumber
	friendlyCountryName generationQualifier givenName homeDirectory homePhone homePostalAddress
	host houseIdentifier info initials internationalISDNNumber jpegPhoto l labeledURI mail
	manager member mobile name o objectClass organizationalStatus ou owner pager personalTitle
	photo physicalDeliveryOfficeName postalAddress postalCode postOfficeBox
	preferredDeliveryMethod preferredLanguage registeredAddress roleOccupant roomNumber
	searchGuide secretary seeAlso serialNumber sn st street telephoneNumber
	teletexTerminalIdentifier telexNumber textEncodedORAddress title uid uniqueIdentifier
	uniqueMember userCertificate userClass userPassword userPKCS12 userSMIMECertificate
	x121Address x500UniqueIdentifier

	uidNumber gidNumber gecos loginShell memberUid shadowExpire shadowFlag shadowInactive
	shadowLastChange shadowMax shadowMin shadowWarning

	createTimestamp creatorsName entryCSN entryDN entryUUID hasSubordinates modifiersName
	modifyTimestamp structuralObjectClass subschemaSubentry contextCSN memberOf isMemberOf
	pwdAccountLockedTime pwdChangedTime pwdFailureTime pwdGraceUseTime pwdPolicySubentry pwdReset
	pwdLastSuccess

	nsUniqueId nsAccountLock nsRole nsRoleDN nscpEntryDN nsIdleTimeout passwordExpirationTime
	passwordRetryCount accountUnlockTime nsds5ReplConflict

	ds-entry-unique-id ds-pwp-account-disabled ds-pwp-account-expiration-time
	ds-pwp-last-login-time ds-create-time ds-update-time

	accountExpires badPwdCount cn company countryCode department displayNamePrintable division
	employeeID extensionAttribute1 extensionAttribute2 extensionAttribute3 extensionAttribute4
	extensionAttribute5 extensionAttribute6 extensionAttribute7 extensionAttribute8
	extensionAttribute9 extensionAttribute10 extensionAttribute11 extensionAttribute12
	extensionAttribute13 extensionAttribute14 extensionAttribute15 groupType ipPhone isDeleted
	lastKnownParent lastLogon lastLogonTimestamp lockoutTime mailNickname managedBy
	middleName msDS-PrincipalName msDS-UserPasswordExpiryTimeComputed
	msDS-User-Account-Control-Computed objectCategory objectGUID objectSid otherMailbox
	otherMobile otherTelephone primaryGroupID proxyAddresses pwdLastSet sAMAccountName
	sAMAccountType streetAddress targetAddress thumbnailPhoto userAccountControl
	userPrincipalName whenChanged whenCreated wWWHomePage
`)

// changeVars are the expression variables that are not attributes.
var changeVars = []struct{ name, doc string }{
	{"dn", "the entry's DN (the new DN after a rename)"},
	{"oldDN", `the DN before a rename; "" for other changes`},
	{"changeType", `"add", "modify", "delete" or "modrdn"; resync reports "add"`},
	{"changed", "the names of the attributes a modify changed, as the source reported them"},
	{"newPassword", "the clear-text password the change set, when the source records it; nil otherwise, and always in resync (secret)"},
}

// secretAttributes hold passwords: their values never leave the process —
// not in logs, not in error messages, not in the state store.
var secretAttributes = map[string]bool{
	"userpassword": true, "unicodepwd": true, "authpassword": true, "sambantpassword": true,
	"sambalmpassword": true, "ds-changelog-encrypted-password": true, "clearpassword": true,
	"unhashed#user#password": true,
}

// IsSecretAttribute reports whether an LDAP attribute holds passwords
// (userPassword, unicodePwd, authPassword, …), matched case-insensitively.
func IsSecretAttribute(name string) bool {
	return secretAttributes[lowerASCII(name)]
}
