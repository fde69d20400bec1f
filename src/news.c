/*
 * news.c - what a build did, read off its graph as notices (notify.h):
 * each deliverable made, each series fetched for the first time, each
 * item pulled (a form's submissions), each job that failed, and the run
 * itself, when it made or failed anything.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "build.h"
#include "catalog.h"
#include "config.h"
#include "graph.h"
#include "news.h"
#include "notify.h"
#include "rule.h"
#include "util.h"

/* The last error line the run printed, without the program's name. */
static char *
last_error(void)
{
	char *lines = log_kept(), *best = NULL, *e;
	size_t pre = strlen(argv0);

	for (char *l = lines; l && *l; l = e + 1) {
		if (!(e = strchr(l, '\n')))
			break;
		*e = '\0';
		if (strncmp(l, argv0, pre) == 0 && l[pre] == ':')
			best = l + pre + 1 + strspn(l + pre + 1, " ");
	}
	best = xstrdup(best ? best : "see its log");
	free(lines);
	return best;
}

/* Does s name any patient of c? */
static int
names_patient(const struct catalog *c, const char *s)
{
	for (int i = 0; i < c->np; i++)
		if ((*c->p[i]->id && strstr(s, c->p[i]->id)) || (*c->p[i]->name && strstr(s,
		    c->p[i]->name)))
			return 1;
	return 0;
}

void
news_send(const struct graph *g, const struct options *o, const struct config *cfg,
    struct state *st, const struct catalog *cat, int64_t started, int failed)
{
	struct notice *v = xcalloc((size_t)g->n + 2, sizeof(*v));
	char **owned = xcalloc((size_t)g->n + 3, sizeof(*owned));
	int n = 0, nown = 0, nfailed = 0, made = 0;
	int64_t now = now_ns();

	if (!cfg->notify.mail_to && !cfg->notify.webhook_url) {
		free(v);
		free(owned);
		return;
	}
	for (int i = 0; i < g->n; i++) {
		const struct node *nd = g->node[i];
		const struct rule *ru = nd->rule;
		struct patient *p = rule_patient(nd);
		struct notice *x = &v[n];
		struct stat sb;

		/* Made by another process sharing the store: its news. */
		if (nd->elsewhere)
			continue;
		x->at = now;
		x->patient = p ? p->name : NULL;
		if (nd->state == N_DONE && ru->product) {
			const char *slash = strrchr(nd->label, '/');

			x->kind = NOTICE_PRODUCT;
			x->what = slash ? slash + 1 : nd->label;
			x->detail = ru->product;
			x->n = p ? p->nwant : 0;
			x->size = stat(nd->label, &sb) == 0 ? (int64_t)sb.st_size : 0;
			n++, made++;
		} else if (nd->state == N_DONE && ru->per == PER_SERIES && !ru->after &&
		    nd->reason && strncmp(nd->reason, "new series", 10) == 0) {
			const struct series *s = nd->obj;

			x->kind = NOTICE_SERIES;
			x->what = s->uid;
			x->detail = s->modality;
			n++, made++;
		} else if (nd->state == N_DONE && ru->per == PER_ITEM && nd->summary) {
			x->kind = NOTICE_ITEM;
			x->what = owned[nown++] = xasprintf("%s %s", ru->name, nd->label);
			x->detail = nd->summary;
			n++, made++;
		} else if (nd->state == N_FAILED) {
			x->kind = NOTICE_FAILURE;
			x->what = owned[nown++] = xasprintf("%s %s", ru->name, nd->label);
			x->detail = nd->error ? nd->error : "failed";
			n++, nfailed++;
		} else if (nd->state == N_DONE) {
			made++;
		}
	}
	if (failed && !nfailed) {
		/* The run itself: an unreachable PACS, a state it cannot write. */
		char *why = owned[nown++] = last_error();

		v[n].at = now;
		v[n].kind = NOTICE_FAILURE;
		v[n].what = "run";
		v[n].detail = !cfg->notify.include_ids && names_patient(cat, why) ?
		    "its message names a patient: see the log of the run" : why;
		n++;
	}
	if (n || made) {
		char *targets = xstrdup("");

		for (int i = 0; i < o->ntargets; i++) {
			char *t = xasprintf("%s%s%s", targets, i ? " " : "", o->targets[i]);

			free(targets);
			targets = t;
		}
		owned[nown++] = targets;
		v[n].at = started;
		v[n].kind = NOTICE_RUN;
		v[n].what = *targets ? targets : "all";
		v[n].detail = failed ? "failed" : "ok";
		v[n].n = (now - started) / 1000000;
		n++;
	}
	notify_news(cfg, st, v, n, failed);
	for (int i = 0; i < nown; i++)
		free(owned[i]);
	free(owned);
	free(v);
}
