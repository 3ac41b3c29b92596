package schedule_test

import (
	"github.com/ccctl/ccctl/lifecycle"
	"github.com/ccctl/ccctl/schedule"
)

// The scheduler is the controller's extension.
var _ lifecycle.Extension = (*schedule.Scheduler)(nil)
