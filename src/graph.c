/* graph.c - nodes and edges. */
#include <stdlib.h>
#include "graph.h"
#include "util.h"

void
graph_init(struct graph *g)
{
	g->node = NULL;
	g->n = 0;
}

void
graph_free(struct graph *g)
{
	for (int i = 0; i < g->n; i++) {
		struct node *n = g->node[i];

		free(n->label);
		free(n->reason);
		free(n->error);
		free(n->summary);
		free(n->claim);
		free(n->in);
		free(n->out);
		free(n);
	}
	free(g->node);
	graph_init(g);
}

/* Make room for one more in an array of n: the capacity is the next power
 * of two, so growing by one is amortized O(1) without a field to hold it. */
static void *
grow(void *v, int n, size_t size)
{
	if (n & (n - 1))
		return v;   /* not a power of two (nor 0): there is room */
	return xreallocarray(v, n ? 2 * (size_t)n : 1, size);
}

struct node *
graph_add(struct graph *g, const struct rule *r, void *obj, char *label)
{
	struct node *n = xcalloc(1, sizeof(*n));

	n->rule = r;
	n->obj = obj;
	n->label = label;
	n->state = N_CLEAN;
	g->node = grow(g->node, g->n, sizeof(*g->node));
	g->node[g->n++] = n;
	return n;
}

void
graph_edge(struct node *from, struct node *to)
{
	from->out = grow(from->out, from->nout, sizeof(*from->out));
	from->out[from->nout++] = to;
	to->in = grow(to->in, to->nin, sizeof(*to->in));
	to->in[to->nin++] = from;
}

void
graph_stale(struct node *n, char *reason)
{
	if (!reason)
		return;
	if (n->reason) {
		free(reason);
		return;
	}
	n->reason = reason;
	n->state = N_STALE;
}

int
graph_count(const struct graph *g, enum nstate s)
{
	int c = 0;

	for (int i = 0; i < g->n; i++)
		c += g->node[i]->state == s;
	return c;
}
