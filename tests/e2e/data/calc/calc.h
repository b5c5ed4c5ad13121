/* A reverse-Polish calculator over long integers. */
#ifndef CALC_H
#define CALC_H

struct stack {
	long v[64];
	int n;
};

int push(struct stack *s, long v);
int pop(struct stack *s, long *v);

enum tok { TOK_NUM, TOK_OP, TOK_END, TOK_BAD };
/* Reads the next token from *p; a number goes to *num, an operator to *op. */
enum tok next_token(const char **p, long *num, char *op);

#endif
