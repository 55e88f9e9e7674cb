package blob

// SetPageSize makes List and DeletePrefix ask for pages of n names, so that
// tests page without writing thousands of blobs.
func SetPageSize(c *Client, n int32) { c.pageSize = n }
