#include "calc.h"

int push(struct stack *s, long v)
{
	if (s->n == (int)(sizeof(s->v) / sizeof(s->v[0])))
		return -1;
	s->v[s->n++] = v;
	return 0;
}

int pop(struct stack *s, long *v)
{
	if (s->n == 0)
		return -1;
	*v = s->v[--s->n];
	return 0;
}
