#include <ctype.h>
#include <stdlib.h>

#include "calc.h"

enum tok next_token(const char **p, long *num, char *op)
{
	char *end;

	while (isspace((unsigned char)**p))
		(*p)++;
	if (!**p)
		return TOK_END;
	if (isdigit((unsigned char)**p)) {
		*num = strtol(*p, &end, 10);
		*p = end;
		return TOK_NUM;
	}
	if (**p == '+' || **p == '-' || **p == '*' || **p == '/') {
		*op = *(*p)++;
		return TOK_OP;
	}
	return TOK_BAD;
}
