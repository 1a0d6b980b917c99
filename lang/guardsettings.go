package lang

// deleteGuard reads the scim block's mass-delete guard settings
// (maxDeletes, maxDeletesPercent, deleteWindow). There is no setting that
// turns the guard off: letting a mass delete through is a decision for one
// command (--allow-deletes), not a standing one.
func (c *compiler) deleteGuard(b *block, vals map[string]any) {
	if n, ok := vals["maxDeletes"].(int); ok {
		if n < 1 {
			c.settingError(b, "maxDeletes", "maxDeletes: want 1 or more deletes (a one-off mass delete is let through with --allow-deletes)")
		}
		c.p.MaxDeletes = n
	}
	if n, ok := vals["maxDeletesPercent"].(int); ok {
		if n < 1 || n > 100 {
			c.settingError(b, "maxDeletesPercent", "maxDeletesPercent: want a whole percentage from 1 to 100")
		}
		c.p.MaxDeletesPercent = n
	}
	if d, ok := vals["deleteWindow"].(durationT); ok {
		if d <= 0 {
			c.settingError(b, "deleteWindow", "deleteWindow: want a duration of more than 0, such as 10m")
		}
		c.p.DeleteWindow = d
	}
}
