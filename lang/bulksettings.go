package lang

// DefaultBulk is the scim block's bulk setting when the script gives
// none: use RFC 7644 §3.7 Bulk when the service's ServiceProviderConfig
// advertises it (issue 15 #4: the engine uses what the service says it
// does; bulk = "on" or "off" overrides a service that advertises wrongly).
const DefaultBulk = "auto"

// bulkSettings reads the scim block's RFC 7644 §3.7 Bulk settings: bulk
// ("auto", the default: use Bulk when the service's ServiceProviderConfig
// advertises it; "on": use it even when the service does not say so, for
// one that advertises wrongly; "off": never), bulkMaxOperations and
// bulkMaxPayload (bytes): the limits of one BulkRequest, which override
// what the service advertises (a service may advertise more than it takes).
func (c *compiler) bulkSettings(b *block, vals map[string]any) {
	c.p.Bulk = DefaultBulk
	if s, ok := vals["bulk"].(string); ok {
		c.p.Bulk = s
	}
	if n, ok := vals["bulkMaxOperations"].(int); ok {
		if n < 1 {
			c.settingError(b, "bulkMaxOperations", "bulkMaxOperations: want 1 or more operations per Bulk request")
		}
		c.p.BulkMaxOperations = n
	}
	if n, ok := vals["bulkMaxPayload"].(int); ok {
		if n < 1024 {
			c.settingError(b, "bulkMaxPayload", "bulkMaxPayload: want the most bytes one Bulk request may hold, 1024 or more")
		}
		c.p.BulkMaxPayload = n
	}
}
