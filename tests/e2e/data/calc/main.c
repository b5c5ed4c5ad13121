#include <stdio.h>

#include "calc.h"

static long apply(char op, long a, long b)
{
	switch (op) {
	case '+': return a + b;
	case '-': return a - b;
	case '*': return a * b;
	default: return b ? a / b : 0;
	}
}

int main(int argc, char **argv)
{
	struct stack s = { .n = 0 };
	const char *p;
	long num, a, b;
	char op;
	enum tok t;

	if (argc != 2) {
		fprintf(stderr, "usage: calc 'RPN EXPRESSION'\n");
		return 2;
	}
	p = argv[1];
	while ((t = next_token(&p, &num, &op)) != TOK_END) {
		if (t == TOK_BAD)
			return 1;
		if (t == TOK_NUM) {
			if (push(&s, num))
				return 1;
			continue;
		}
		if (pop(&s, &b) || pop(&s, &a) || push(&s, apply(op, a, b)))
			return 1;
	}
	if (pop(&s, &num) || s.n)
		return 1;
	printf("%ld\n", num);
	return 0;
}
