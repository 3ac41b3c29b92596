package render

import (
	"context"
	"slices"

	"github.com/ccctl/ccctl/lifecycle"
)

// Events are the hook events on which Install renders the templates: the
// init hooks (the first render, before the service starts) and every role,
// master or membership change after.
var Events = []lifecycle.HookName{
	lifecycle.HookStartedAsMaster,
	lifecycle.HookStartedAsSlave,
	lifecycle.HookTransitionSlaveToMaster,
	lifecycle.HookTransitionMasterToSlave,
	lifecycle.HookMasterChanged,
	lifecycle.HookMembersAdded,
	lifecycle.HookMembersRemoved,
}

// DataFromEvent returns the template data of a hook event. Env is left nil
// (the process's environment).
func DataFromEvent(ev lifecycle.HookEvent) Data {
	return Data{
		Role:        ev.Role,
		InstanceID:  ev.InstanceID,
		Environment: ev.Environment,
		Service:     ev.Service,
		Master:      Master{ID: ev.Master.ID, Host: ev.Master.Host, Address: ev.Master.Address},
		Token:       ev.Token,
		Members:     ev.Members,
	}
}

// Hook returns a lifecycle hook that renders the templates for its event.
// On an init hook (started_as_master, started_as_slave) it renders without
// running reload commands, since the service has not started, and returns
// the error, so that a member whose configuration cannot be written never
// starts its service. On a later event it renders and reloads, logs a
// failure at level error and returns nil, so that the user's hooks that
// follow in the list still run. While the cluster has no master (between
// the old master's departure and the next one's election), a later event
// leaves the files as they are: they follow the next master, and a
// replica's configuration never points at nobody.
func (r *Renderer) Hook() lifecycle.HookFunc {
	return func(ctx context.Context, ev lifecycle.HookEvent) error {
		d := DataFromEvent(ev)
		switch ev.Name {
		case lifecycle.HookStartedAsMaster, lifecycle.HookStartedAsSlave:
			_, err := r.RenderWithoutReload(ctx, d)
			return err
		}
		if ev.Master.ID == "" {
			r.log.Debug("templates kept: no master", "hook", string(ev.Name))
			return nil
		}
		if _, err := r.Render(ctx, d); err != nil {
			r.log.Error("render templates", "hook", string(ev.Name), "role", string(ev.Role), "err", err)
		}
		return nil
	}
}

// Install puts r's Hook first in the lists of hooks for every event of
// Events, before the user's hooks, and returns the map (a new one when
// hooks is nil). The lists are copied, not changed in place.
func (r *Renderer) Install(hooks map[lifecycle.HookName][]lifecycle.Hook) map[lifecycle.HookName][]lifecycle.Hook {
	if hooks == nil {
		hooks = make(map[lifecycle.HookName][]lifecycle.Hook)
	}
	h := r.Hook()
	for _, name := range Events {
		hooks[name] = slices.Insert(slices.Clone(hooks[name]), 0, lifecycle.Hook(h))
	}
	return hooks
}
