/* setup.c - the config, selection, state and catalog of a build or a tool. */
#include <stdlib.h>
#include <string.h>
#include "rule.h"
#include "setup.h"
#include "util.h"

void
setup_init(struct setup *s)
{
	memset(s, 0, sizeof(*s));
	catalog_init(&s->cat);
}

int
setup_config(struct setup *s, const struct options *o, int need)
{
	char *err = NULL;

	if (config_load(&s->cfg, o->file, &err) < 0) {
		warn("%s", err);
		free(err);
		return -1;
	}
	s->have |= NEED_CONFIG;
	{
		char e[256];

		if (rules_declare(&s->cfg, e, sizeof(e)) < 0) {
			warn("%s", e);
			return -1;
		}
	}
	if (need & NEED_SELECT) {
		s->have |= NEED_SELECT;   /* a failed select_init leaves some to free */
		if (select_init(&s->sel, &s->cfg, &err) < 0) {
			warn("%s", err);
			free(err);
			return -1;
		}
	}
	return 0;
}

void
setup_state_error(struct setup *s)
{
	char *where = config_where(&s->cfg, "state", "url");

	warn("%s: %s", where, s->st.err);
	free(where);
}

int
setup_state(struct setup *s, int flags, int need)
{
	if (state_open(&s->st, s->cfg.state.url, flags, s->cfg.state.lease * 1000) < 0) {
		setup_state_error(s);
		return -1;
	}
	if ((need & NEED_CATALOG) && state_load(&s->st, &s->cat) < 0) {
		setup_state_error(s);
		return -1;
	}
	s->have |= need & NEED_CATALOG;
	return 0;
}

void
setup_free(struct setup *s)
{
	catalog_free(&s->cat);
	state_close(&s->st);      /* nothing when it did not open */
	if (s->have & NEED_SELECT)
		select_free(&s->sel);
	if (s->have & NEED_CONFIG)
		config_free(&s->cfg);
	s->have = 0;
}
