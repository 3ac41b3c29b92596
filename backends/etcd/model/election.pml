/*
 * election.pml: a model of ccctl's etcd election (backends/etcd), checked
 * with spin. It models what carries safety, not the pacing: any member may
 * try any step at any time (the decision and its timing are left free), and
 * only etcd's transaction conditions and the session's local deadline stand
 * between the members and a second master.
 *
 * Modelled: three members and a key written by hand; etcd's keys (the
 * leader key election/<id>, the heir's place, control/pause,
 * control/switchover) and leases; renewals sent, lost, answered late; the
 * local deadline (send time of the last acknowledged renewal + TTL -
 * margin); lease expiry on the server; crashes (a crashed member comes
 * back once its old lease is gone); freezes; cut-offs (every message may
 * be lost); a session given up and opened again (the old lease revoked);
 * the campaign's transaction; the heir's claim; the holder's pass of the
 * heir's place to another live member (the ranking); the handover in the
 * resigning leader's transaction, to the heir or to any other live member
 * (the best candidate of the ranking); adopting a handed-over term; the
 * monitor; pause and switchover (forced or not: one key).
 *
 * Invariants (checked in every state):
 *   one_key:   at most one key under election/
 *   bound:     every leader key is bound to a live lease
 *   one_actor: at most one member acts as master (leads and is not frozen)
 *   in_time:   a member acts as master only before its local deadline,
 *              and its lease lives on the server
 *   tokens:    every term's token is greater than every earlier term's
 *              (asserted when a term begins)
 *
 * Planted bugs (each must make spin fail): -DBUG_NO_VACANCY (the campaign's
 * transaction does not check that election/ is empty), -DBUG_HEIR_LEASE
 * (the handover does not check that the heir's place is bound to a lease),
 * -DBUG_NO_DEADLINE (no local deadline: a member leads as long as it
 * has not heard that its lease is gone, as with concurrency.Session),
 * -DBUG_ADOPT_ENDED (a member adopts a term it has ended),
 * -DBUG_BEST_LEASE (the handover to the best candidate binds its key to
 * a lease that etcd does not check is alive).
 */

#define N      3        /* members 0..2 */
#define GHOST  3        /* an id written by hand */
#define NONE   255
#define TTL    3
#define MARGIN 1
/* the planted bugs, as the conditions they remove */
#ifdef BUG_NO_VACANCY
#define VACANCY_CHECK true
#else
#define VACANCY_CHECK VACANT
#endif
#ifdef BUG_ADOPT_ENDED
#define NOT_ENDED(i) true
#else
#define NOT_ENDED(i) (lcrev[i] != ended[i])
#endif
#ifdef BUG_NO_DEADLINE
#define BEFORE_DEADLINE(i) true
#define TIMER_DUE(i) false
#else
#define BEFORE_DEADLINE(i) (now < deadline[i])
#define TIMER_DUE(i) (session[i] && !frozen[i] && now >= deadline[i])
#endif
#ifdef BUG_BEST_LEASE
#define BEST_LEASED(j) true
#else
#define BEST_LEASED(j) alive[j]  /* etcd refuses a put with a dead lease */
#endif
#ifdef BUG_HEIR_LEASE
#define HEIR_LEASED(i) true
#else
#define HEIR_LEASED(i) (hlease != NONE)
#endif

#ifndef MAXT
#define MAXT   8        /* the model's horizon, in time units */
#endif
#ifndef MAXREV
#define MAXREV 12       /* ... and in etcd revisions */
#endif
#define W (rev < MAXREV) /* a write is possible within the horizon */

byte now;               /* the time: etcd's and the members' clocks run at one rate */
byte rev;               /* etcd's revision */

/* etcd's keys */
byte lcrev[N+1];        /* create revision of election/<id>; 0 = absent */
byte llease[N+1];       /* the member whose lease holds it; NONE = no lease */
byte heir = NONE;       /* the id in the heir's place */
byte hcrev;             /* its create revision */
byte hlease = NONE;     /* the lease it is bound to */
bool paused;            /* control/pause */
byte sw = NONE;         /* control/switchover: the named member; bound to its lease */
byte swrev;             /* its mod revision; 0 = absent */

/* etcd's leases: one per member at a time */
bool alive[N];
byte expires[N];

/* the members */
bool session[N];        /* holds a session it believes live */
byte deadline[N];       /* local deadline */
byte won[N];            /* a term (its token) learnt, not yet taken up */
bool leading[N];
byte token[N];
byte ended[N];          /* the token of the last term this member ended */
bool frozen[N];


byte last;              /* the greatest token of a term begun */
/* The budgets of faults and of the operator's requests: each run of the
 * model sets some (see model_test.go); the state space of all of them at
 * once is out of reach of one run. */
#ifndef FREEZES
#define FREEZES 0
#endif
#ifndef CRASHES
#define CRASHES 0
#endif
#ifndef OPS
#define OPS 0
#endif
#ifndef GHOSTS
#define GHOSTS 0
#endif
byte freezes = FREEZES; /* processes frozen, then woken */
byte crashes = CRASHES; /* processes killed, then started again */
byte ops = OPS;         /* operator requests: pause, switchover */
byte ghosts = GHOSTS;   /* keys written by hand */

#define KEYS (  (lcrev[0] != 0) + (lcrev[1] != 0) + (lcrev[2] != 0) + (lcrev[3] != 0))
#define VACANT (KEYS == 0)
#define ACTS(i) (leading[i] && !frozen[i])
#define ACTORS (ACTS(0) + ACTS(1) + ACTS(2))
#define BOUND(k) (lcrev[k] == 0 || (llease[k] != NONE && alive[llease[k]]))
#define INTIME(i) (!ACTS(i) || (now <= deadline[i] && alive[i] && now < expires[i]))

#define SAFE (KEYS <= 1 && ACTORS <= 1 && BOUND(0) && BOUND(1) && BOUND(2) && BOUND(3) && \
              INTIME(0) && INTIME(1) && INTIME(2))

/* A lease ends (expired or revoked): etcd deletes the keys bound to it. */
inline drop_lease(i) {
	alive[i] = false;
	if :: llease[0] == i -> lcrev[0] = 0; llease[0] = NONE :: else fi;
	if :: llease[1] == i -> lcrev[1] = 0; llease[1] = NONE :: else fi;
	if :: llease[2] == i -> lcrev[2] = 0; llease[2] = NONE :: else fi;
	if :: hlease == i -> heir = NONE; hcrev = 0; hlease = NONE :: else fi;
	if :: sw == i -> sw = NONE; swrev = 0 :: else fi
}

/* The resigning leader i hands over to member j, not in the heir's
 * place: j's key bound to j's lease, and j put in the place (release). */
inline handover_to(i, j) {
	lcrev[i] = 0; llease[i] = NONE;
	rev++; lcrev[j] = rev; llease[j] = j;
	heir = j; hcrev = rev; hlease = j
}

/* The holder passes the heir's place to member j, bound to j's lease
 * (passHeir). */
inline pass_to(j) {
	rev++; heir = j; hcrev = rev; hlease = j
}

/* The session is given up, or lost with the process: the term with it. */
inline give_up(i) {
	if :: leading[i] -> ended[i] = token[i] :: else fi;
	session[i] = false; leading[i] = false; won[i] = 0
}

/* The clock: it does not pass a live member's local deadline before the
 * member's timer has given its session up (the timer is local; a frozen
 * member's does not run). */
active proctype clock() {
	do
	:: atomic {
		now < MAXT &&
		!TIMER_DUE(0) && !TIMER_DUE(1) && !TIMER_DUE(2) ->
		now++
	}
	od
}

/* etcd expires member i's lease. */
inline expiry(i) {
	atomic { alive[i] && now >= expires[i] -> drop_lease(i) }
}

proctype member(byte i) {
	byte h;
	do
	/* open a session: a fresh lease; a session given up revokes its old lease first */
	:: atomic { !frozen[i] && !session[i] && !alive[i] ->
		alive[i] = true; expires[i] = now + TTL;
		session[i] = true; deadline[i] = now + TTL - MARGIN
	}
	:: atomic { !frozen[i] && !session[i] && alive[i] -> drop_lease(i) } /* revoke */
	/* A renewal: sent at now or one unit earlier, it reaches etcd now,
	 * which renews the lease from now, and its answer is applied at once
	 * (a later answer only moves the deadline later: this allows every
	 * behaviour of a slow answer and more). A lost renewal is no step. */
	:: atomic { !frozen[i] && session[i] && alive[i] ->
		expires[i] = now + TTL;
		if
		:: now + TTL - MARGIN > deadline[i] -> deadline[i] = now + TTL - MARGIN
		:: now > 0 && now - 1 + TTL - MARGIN > deadline[i] -> deadline[i] = now - 1 + TTL - MARGIN
		:: else
		fi
	}
	:: expiry(i)
	/* the local timer */
	:: atomic { !frozen[i] && session[i] && now >= deadline[i] -> give_up(i) }
	/* claim the heir's place */
	:: atomic { W && !frozen[i] && session[i] && !leading[i] && heir == NONE && alive[i] ->
		rev++; heir = i; hcrev = rev; hlease = i
	}
	/* the holder of the heir's place passes it on (passHeir) */
	:: atomic { W && !frozen[i] && session[i] && !leading[i] && heir == i && hlease == i ->
		if
		:: alive[0] && i != 0 -> pass_to(0)
		:: alive[1] && i != 1 -> pass_to(1)
		:: alive[2] && i != 2 -> pass_to(2)
		:: else
		fi
	}
	/* the campaign's transaction (tryLead) */
	:: atomic { W && !frozen[i] && session[i] && !leading[i] && won[i] == 0 ->
		if
		:: VACANCY_CHECK && !paused && alive[i] ->
			rev++; lcrev[i] = rev; llease[i] = i; won[i] = rev;
			if :: sw != NONE -> sw = NONE; swrev = 0 :: else fi;
			if :: hlease == i -> heir = NONE; hcrev = 0; hlease = NONE :: else fi
		:: else
		fi
	}
	/* the watch shows a key of its own it did not create: a handed-over term */
	:: atomic { !frozen[i] && session[i] && !leading[i] && won[i] == 0 && lcrev[i] != 0 && NOT_ENDED(i) -> won[i] = lcrev[i]
	}
	/* a term learnt is taken up only within the session's deadline */
	:: atomic { !frozen[i] && won[i] != 0 ->
		if
		:: session[i] && BEFORE_DEADLINE(i) ->
			leading[i] = true; token[i] = won[i];
			assert(token[i] > last);
			last = token[i]
		:: else /* a campaign that ended: its key goes */
			if :: llease[i] == i -> lcrev[i] = 0; llease[i] = NONE :: else fi
		fi;
		won[i] = 0
	}
	/* the leader's monitor: its key deleted or replaced ends the term */
	:: atomic { !frozen[i] && leading[i] && lcrev[i] != token[i] -> ended[i] = token[i]; leading[i] = false }
	/* resign: the term ends (Done closed) first ... */
	:: atomic { W && !frozen[i] && session[i] && leading[i] -> ended[i] = token[i]; leading[i] = false;
		/* ... then the release, which may be lost */
		if
		:: skip
		:: lcrev[i] == token[i] ->
			/* the heir's place as the leader's view shows it: the
			 * transaction's condition that it is unchanged makes the view
			 * the current one */
			h = heir;
			if
			:: (h != NONE && h != i && (sw == NONE || sw == h) &&
			    HEIR_LEASED(i) && !paused &&
			    (hlease == NONE || alive[hlease])) ->  /* etcd refuses a put with a dead lease */
				lcrev[i] = 0; llease[i] = NONE;
				rev++; lcrev[h] = rev; llease[h] = hlease;
				if :: sw != NONE -> sw = NONE; swrev = 0 :: else fi
			/* to the best candidate of a ranking, any other member */
			:: sw == NONE && !paused && i != 0 && BEST_LEASED(0) -> handover_to(i, 0)
			:: sw == NONE && !paused && i != 1 && BEST_LEASED(1) -> handover_to(i, 1)
			:: sw == NONE && !paused && i != 2 && BEST_LEASED(2) -> handover_to(i, 2)
			:: else ->
				lcrev[i] = 0; llease[i] = NONE;
				if :: hlease == i -> heir = NONE; hcrev = 0; hlease = NONE :: else fi
			fi
		fi;
		h = 0
	}
	/* faults */
	:: atomic { !frozen[i] && freezes > 0 -> freezes--; frozen[i] = true }
	:: atomic { frozen[i] -> frozen[i] = false;
		/* woken, the member's timer is the first to run */
		if :: session[i] && now >= deadline[i] -> give_up(i) :: else fi
	}
	:: atomic { crashes > 0 -> crashes--; give_up(i); frozen[i] = false }
	od
}

/* The operator, and whoever writes keys by hand. */
active proctype operator() {
	do
	:: atomic { W && ops > 0 && !paused -> ops--; rev++; paused = true }
	:: atomic { W && paused -> rev++; paused = false }
	:: atomic { W && ops > 0 && sw == NONE -> ops--;
		if
		:: alive[0] -> rev++; sw = 0; swrev = rev
		:: alive[1] -> rev++; sw = 1; swrev = rev
		:: alive[2] -> rev++; sw = 2; swrev = rev
		:: else
		fi
	}
	:: atomic { W && ghosts > 0 && heir == NONE -> ghosts--; rev++; heir = GHOST; hcrev = rev; hlease = NONE }
	od
}

init {
	atomic {
		byte k;
		for (k : 0 .. N) { llease[k] = NONE }
		run member(0); run member(1); run member(2)
	}
}

/* The invariants, checked in every state. */
active proctype monitor() {
	do
	:: assert(SAFE)
	od
}
