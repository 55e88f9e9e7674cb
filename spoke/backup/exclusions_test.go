package backup

import "testing"

// Lifeboat's own records are never backed up, but a team's PreBackupPods
// are: a restore needs them to run their restoreCommand.
func TestLifeboatsOwnRecordsAreExcludedButPreBackupPods(t *testing.T) {
	for k, want := range map[resourceKey]bool{
		{"backup.lifeboat.dev", "applicationbackups"}: true,
		{"backup.lifeboat.dev", "backupdeletions"}:    true,
		{"fleet.lifeboat.dev", "backups"}:             true,
		{"backup.lifeboat.dev", "prebackuppods"}:      false,
	} {
		if got := excluded(k) != ""; got != want {
			t.Errorf("excluded(%v) = %q, want excluded %v", k, excluded(k), want)
		}
	}
}
