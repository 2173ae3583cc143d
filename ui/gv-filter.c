/* gv-filter.c — filter expressions over numeric columns (gv-filter.h).
 *
 * A recursive-descent parser builds a small expression tree whose leaves are numbers and
 * column arrays; evaluation walks the tree for one row. Nodes live in one array owned by the
 * filter, because a chained comparison (a < b < c) shares its middle operand between two
 * comparisons.
 */
#include "gv-filter.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

G_DEFINE_QUARK (gv-filter-error-quark, gv_filter_error)

typedef enum
{
  TOKEN_END,
  TOKEN_NUMBER,
  TOKEN_NAME,
  TOKEN_LPAREN,
  TOKEN_RPAREN,
  TOKEN_PLUS,
  TOKEN_MINUS,
  TOKEN_STAR,
  TOKEN_SLASH,
  TOKEN_LT,
  TOKEN_LE,
  TOKEN_GT,
  TOKEN_GE,
  TOKEN_EQ,
  TOKEN_NE,
  TOKEN_AND,
  TOKEN_OR,
  TOKEN_NOT,
} TokenKind;

typedef struct
{
  TokenKind kind;
  const char *start; /* into the expression text */
  gsize length;
  double number; /* TOKEN_NUMBER */
} Token;

typedef enum
{
  /* numbers */
  NODE_CONSTANT,
  NODE_COLUMN,
  NODE_NEGATE,
  NODE_ADD,
  NODE_SUBTRACT,
  NODE_MULTIPLY,
  NODE_DIVIDE,
  NODE_ABS,
  NODE_SQRT,
  NODE_LOG10,
  NODE_LN,
  NODE_EXP,
  /* conditions */
  NODE_LT,
  NODE_LE,
  NODE_GT,
  NODE_GE,
  NODE_EQ,
  NODE_NE,
  NODE_AND,
  NODE_OR,
  NODE_NOT,
  NODE_ISNAN,
} NodeKind;

typedef struct Node Node;
struct Node
{
  NodeKind kind;
  gboolean is_condition;
  int position; /* 1-based character position of the node's first token, for messages */
  double constant;
  const double *column;
  const Node *a, *b;
};

struct _GvFilter
{
  gatomicrefcount ref_count;
  char *expression;
  GPtrArray *nodes; /* Node *, all of the tree */
  const Node *root;
};

G_DEFINE_BOXED_TYPE (GvFilter, gv_filter, gv_filter_ref, gv_filter_unref)

/* One-argument functions: name → node kind. isnan gives a condition. */
static const struct
{
  const char *name;
  NodeKind kind;
} functions[] = {
  { "abs", NODE_ABS },     { "sqrt", NODE_SQRT }, { "log10", NODE_LOG10 },
  { "ln", NODE_LN },       { "exp", NODE_EXP },   { "isnan", NODE_ISNAN },
};

typedef struct
{
  const char *text;
  const char *cursor; /* where the next token starts */
  Token token;        /* the current token */
  GvFilterLookupFunc lookup;
  gpointer user_data;
  GPtrArray *nodes;
  GError **error;
} Parser;

static int
position_of (Parser *parser, const char *pointer)
{
  return (int) g_utf8_pointer_to_offset (parser->text, pointer) + 1;
}

static gboolean
is_name_start (char c)
{
  return g_ascii_isalpha (c) || c == '_';
}

static gboolean
is_name_char (char c)
{
  return g_ascii_isalnum (c) || c == '_';
}

/* The token's text as a new string, for messages. */
static char *
token_text (const Token *token)
{
  if (token->kind == TOKEN_END)
    return g_strdup (_("the end"));
  return g_strdup_printf ("“%.*s”", (int) token->length, token->start);
}

static gboolean
name_is (const Token *token, const char *word)
{
  return token->length == strlen (word) && g_ascii_strncasecmp (token->start, word,
                                                                token->length) == 0;
}

/* Reads the next token into parser->token. */
static gboolean
next_token (Parser *parser)
{
  const char *p = parser->cursor;
  while (g_ascii_isspace (*p))
    p++;

  Token *t = &parser->token;
  t->start = p;
  t->length = 1;
  switch (*p)
    {
    case '\0':
      t->kind = TOKEN_END;
      t->length = 0;
      break;
    case '(':
      t->kind = TOKEN_LPAREN;
      break;
    case ')':
      t->kind = TOKEN_RPAREN;
      break;
    case '+':
      t->kind = TOKEN_PLUS;
      break;
    case '-':
      t->kind = TOKEN_MINUS;
      break;
    case '*':
      t->kind = TOKEN_STAR;
      break;
    case '/':
      t->kind = TOKEN_SLASH;
      break;
    case '<':
      if (p[1] == '=')
        t->kind = TOKEN_LE, t->length = 2;
      else if (p[1] == '>')
        t->kind = TOKEN_NE, t->length = 2;
      else
        t->kind = TOKEN_LT;
      break;
    case '>':
      if (p[1] == '=')
        t->kind = TOKEN_GE, t->length = 2;
      else
        t->kind = TOKEN_GT;
      break;
    case '=':
      t->kind = TOKEN_EQ;
      t->length = p[1] == '=' ? 2 : 1;
      break;
    case '!':
      if (p[1] == '=')
        t->kind = TOKEN_NE, t->length = 2;
      else
        t->kind = TOKEN_NOT;
      break;
    case '&':
      t->kind = TOKEN_AND;
      t->length = p[1] == '&' ? 2 : 1;
      break;
    case '|':
      t->kind = TOKEN_OR;
      t->length = p[1] == '|' ? 2 : 1;
      break;
    default:
      if (g_ascii_isdigit (*p) || (*p == '.' && g_ascii_isdigit (p[1])))
        {
          /* Decimal digits with an optional fraction and exponent; parsed by hand to stay
           * away from strtod's hexadecimal, "inf" and "nan" forms. */
          const char *q = p;
          while (g_ascii_isdigit (*q))
            q++;
          if (*q == '.')
            for (q++; g_ascii_isdigit (*q); q++)
              ;
          if ((*q == 'e' || *q == 'E')
              && (g_ascii_isdigit (q[1])
                  || ((q[1] == '+' || q[1] == '-') && g_ascii_isdigit (q[2]))))
            for (q += 2; g_ascii_isdigit (*q); q++)
              ;
          if (is_name_char (*q) || *q == '.')
            {
              g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX,
                           _("Malformed number at position %d"), position_of (parser, p));
              return FALSE;
            }
          g_autofree char *digits = g_strndup (p, (gsize) (q - p));
          t->kind = TOKEN_NUMBER;
          t->number = g_ascii_strtod (digits, NULL);
          t->length = (gsize) (q - p);
        }
      else if (is_name_start (*p))
        {
          const char *q = p;
          while (is_name_char (*q))
            q++;
          t->length = (gsize) (q - p);
          if (name_is (t, "and"))
            t->kind = TOKEN_AND;
          else if (name_is (t, "or"))
            t->kind = TOKEN_OR;
          else if (name_is (t, "not"))
            t->kind = TOKEN_NOT;
          else
            t->kind = TOKEN_NAME;
        }
      else
        {
          gunichar c = g_utf8_get_char (p);
          char utf8[8] = { 0 };
          g_unichar_to_utf8 (c, utf8);
          g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX,
                       _("Unexpected character “%s” at position %d"), utf8,
                       position_of (parser, p));
          return FALSE;
        }
      break;
    }
  parser->cursor = p + t->length;
  return TRUE;
}

static Node *
new_node (Parser *parser, NodeKind kind, gboolean is_condition, const char *at)
{
  Node *node = g_new0 (Node, 1);
  node->kind = kind;
  node->is_condition = is_condition;
  node->position = position_of (parser, at);
  g_ptr_array_add (parser->nodes, node);
  return node;
}

static void
syntax_error_here (Parser *parser, const char *expected)
{
  g_autofree char *found = token_text (&parser->token);
  g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX,
               /* TRANSLATORS: "Expected a number, a column or “(” at position 7, found “)”" */
               _("Expected %s at position %d, found %s"), expected,
               position_of (parser, parser->token.start), found);
}

/* Checks that an operand is a number (want_condition FALSE) or a condition. */
static gboolean
check_operand (Parser *parser, const Node *operand, gboolean want_condition,
               const char *operator_start, gsize operator_length)
{
  if (operand->is_condition == want_condition)
    return TRUE;
  g_autofree char *op = g_strndup (operator_start, operator_length);
  if (want_condition)
    g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_TYPE,
                 _("“%s” at position %d joins conditions, but the operand at position %d is a "
                   "number (compare it, e.g. “Z < 0.2”)"),
                 op, position_of (parser, operator_start), operand->position);
  else
    g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_TYPE,
                 _("“%s” at position %d needs numbers, but the operand at position %d is a "
                   "condition"),
                 op, position_of (parser, operator_start), operand->position);
  return FALSE;
}

static Node *parse_or (Parser *parser);

static Node *
parse_unary (Parser *parser)
{
  Token t = parser->token;
  switch (t.kind)
    {
    case TOKEN_MINUS:
    case TOKEN_PLUS:
      {
        if (!next_token (parser))
          return NULL;
        Node *operand = parse_unary (parser);
        if (operand == NULL || !check_operand (parser, operand, FALSE, t.start, t.length))
          return NULL;
        if (t.kind == TOKEN_PLUS)
          return operand;
        Node *node = new_node (parser, NODE_NEGATE, FALSE, t.start);
        node->a = operand;
        return node;
      }
    case TOKEN_NUMBER:
      {
        Node *node = new_node (parser, NODE_CONSTANT, FALSE, t.start);
        node->constant = t.number;
        return next_token (parser) ? node : NULL;
      }
    case TOKEN_LPAREN:
      {
        if (!next_token (parser))
          return NULL;
        Node *inner = parse_or (parser);
        if (inner == NULL)
          return NULL;
        if (parser->token.kind != TOKEN_RPAREN)
          {
            g_autofree char *expected = g_strdup_printf (
                _("“)” to close the “(” at position %d"), position_of (parser, t.start));
            syntax_error_here (parser, expected);
            return NULL;
          }
        return next_token (parser) ? inner : NULL;
      }
    case TOKEN_NAME:
      {
        g_autofree char *name = g_strndup (t.start, t.length);
        if (!next_token (parser))
          return NULL;
        if (parser->token.kind == TOKEN_LPAREN)
          {
            const char *paren = parser->token.start;
            gsize f = 0;
            while (f < G_N_ELEMENTS (functions) && g_ascii_strcasecmp (functions[f].name, name))
              f++;
            if (f == G_N_ELEMENTS (functions))
              {
                g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_UNKNOWN_COLUMN,
                             _("Unknown function “%s” at position %d (known: abs, sqrt, log10, "
                               "ln, exp, isnan)"),
                             name, position_of (parser, t.start));
                return NULL;
              }
            if (!next_token (parser))
              return NULL;
            Node *argument = parse_or (parser);
            if (argument == NULL || !check_operand (parser, argument, FALSE, t.start, t.length))
              return NULL;
            if (parser->token.kind != TOKEN_RPAREN)
              {
                g_autofree char *expected = g_strdup_printf (
                    _("“)” to close the “(” at position %d"), position_of (parser, paren));
                syntax_error_here (parser, expected);
                return NULL;
              }
            Node *node = new_node (parser, functions[f].kind, functions[f].kind == NODE_ISNAN,
                                   t.start);
            node->a = argument;
            return next_token (parser) ? node : NULL;
          }
        const double *column = parser->lookup (name, parser->user_data);
        if (column == NULL)
          {
            g_set_error (parser->error, GV_FILTER_ERROR, GV_FILTER_ERROR_UNKNOWN_COLUMN,
                         _("No column named “%s” (position %d)"), name,
                         position_of (parser, t.start));
            return NULL;
          }
        Node *node = new_node (parser, NODE_COLUMN, FALSE, t.start);
        node->column = column;
        return node;
      }
    default:
      syntax_error_here (parser, _("a number, a column name or “(”"));
      return NULL;
    }
}

static Node *
parse_product (Parser *parser)
{
  Node *left = parse_unary (parser);
  while (left != NULL
         && (parser->token.kind == TOKEN_STAR || parser->token.kind == TOKEN_SLASH))
    {
      Token op = parser->token;
      if (!next_token (parser))
        return NULL;
      Node *right = parse_unary (parser);
      if (right == NULL || !check_operand (parser, left, FALSE, op.start, op.length)
          || !check_operand (parser, right, FALSE, op.start, op.length))
        return NULL;
      Node *node = new_node (parser, op.kind == TOKEN_STAR ? NODE_MULTIPLY : NODE_DIVIDE,
                             FALSE, op.start);
      node->position = left->position;
      node->a = left;
      node->b = right;
      left = node;
    }
  return left;
}

static Node *
parse_sum (Parser *parser)
{
  Node *left = parse_product (parser);
  while (left != NULL
         && (parser->token.kind == TOKEN_PLUS || parser->token.kind == TOKEN_MINUS))
    {
      Token op = parser->token;
      if (!next_token (parser))
        return NULL;
      Node *right = parse_product (parser);
      if (right == NULL || !check_operand (parser, left, FALSE, op.start, op.length)
          || !check_operand (parser, right, FALSE, op.start, op.length))
        return NULL;
      Node *node = new_node (parser, op.kind == TOKEN_PLUS ? NODE_ADD : NODE_SUBTRACT, FALSE,
                             op.start);
      node->position = left->position;
      node->a = left;
      node->b = right;
      left = node;
    }
  return left;
}

static gboolean
comparison_kind (TokenKind token, NodeKind *kind)
{
  switch (token)
    {
    case TOKEN_LT: *kind = NODE_LT; return TRUE;
    case TOKEN_LE: *kind = NODE_LE; return TRUE;
    case TOKEN_GT: *kind = NODE_GT; return TRUE;
    case TOKEN_GE: *kind = NODE_GE; return TRUE;
    case TOKEN_EQ: *kind = NODE_EQ; return TRUE;
    case TOKEN_NE: *kind = NODE_NE; return TRUE;
    default: return FALSE;
    }
}

/* a < b < c … is (a < b) and (b < c) and …, each operand evaluated as its own node. */
static Node *
parse_comparison (Parser *parser)
{
  Node *left = parse_sum (parser);
  Node *result = NULL;
  NodeKind kind;
  while (left != NULL && comparison_kind (parser->token.kind, &kind))
    {
      Token op = parser->token;
      if (!next_token (parser))
        return NULL;
      Node *right = parse_sum (parser);
      if (right == NULL || !check_operand (parser, left, FALSE, op.start, op.length)
          || !check_operand (parser, right, FALSE, op.start, op.length))
        return NULL;
      Node *comparison = new_node (parser, kind, TRUE, op.start);
      comparison->position = left->position;
      comparison->a = left;
      comparison->b = right;
      if (result == NULL)
        result = comparison;
      else
        {
          Node *both = new_node (parser, NODE_AND, TRUE, op.start);
          both->position = result->position;
          both->a = result;
          both->b = comparison;
          result = both;
        }
      left = right;
    }
  if (left == NULL)
    return NULL;
  return result != NULL ? result : left;
}

static Node *
parse_not (Parser *parser)
{
  if (parser->token.kind != TOKEN_NOT)
    return parse_comparison (parser);
  Token op = parser->token;
  if (!next_token (parser))
    return NULL;
  Node *operand = parse_not (parser);
  if (operand == NULL || !check_operand (parser, operand, TRUE, op.start, op.length))
    return NULL;
  Node *node = new_node (parser, NODE_NOT, TRUE, op.start);
  node->a = operand;
  return node;
}

/* A left-associative chain of `operand`s joined by the boolean operator `token` (AND binds
 * tighter than OR: parse_or's operands are parse_and's chains). */
static Node *
parse_chain (Parser *parser, TokenKind token, NodeKind kind, Node *(*operand) (Parser *))
{
  Node *left = operand (parser);
  while (left != NULL && parser->token.kind == token)
    {
      Token op = parser->token;
      if (!next_token (parser))
        return NULL;
      Node *right = operand (parser);
      if (right == NULL || !check_operand (parser, left, TRUE, op.start, op.length)
          || !check_operand (parser, right, TRUE, op.start, op.length))
        return NULL;
      Node *node = new_node (parser, kind, TRUE, op.start);
      node->position = left->position;
      node->a = left;
      node->b = right;
      left = node;
    }
  return left;
}

static Node *
parse_and (Parser *parser)
{
  return parse_chain (parser, TOKEN_AND, NODE_AND, parse_not);
}

static Node *
parse_or (Parser *parser)
{
  return parse_chain (parser, TOKEN_OR, NODE_OR, parse_and);
}

gboolean
gv_filter_text_is_blank (const char *expression)
{
  if (expression == NULL)
    return TRUE;
  for (const char *p = expression; *p != '\0'; p++)
    if (!g_ascii_isspace (*p))
      return FALSE;
  return TRUE;
}

GvFilter *
gv_filter_new (const char *expression, GvFilterLookupFunc lookup, gpointer user_data,
               GError **error)
{
  g_return_val_if_fail (expression != NULL, NULL);
  g_return_val_if_fail (lookup != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!g_utf8_validate (expression, -1, NULL))
    {
      g_set_error_literal (error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX,
                           _("The filter is not valid UTF-8 text"));
      return NULL;
    }
  if (gv_filter_text_is_blank (expression))
    {
      g_set_error_literal (error, GV_FILTER_ERROR, GV_FILTER_ERROR_SYNTAX,
                           _("The filter is empty"));
      return NULL;
    }

  /* A local GError so that a type or syntax error raised deep in the parser is the one kept. */
  GError *local_error = NULL;
  Parser parser = {
    .text = expression,
    .cursor = expression,
    .lookup = lookup,
    .user_data = user_data,
    .nodes = g_ptr_array_new_with_free_func (g_free),
    .error = &local_error,
  };
  Node *root = NULL;
  if (next_token (&parser))
    root = parse_or (&parser);
  if (root != NULL && parser.token.kind != TOKEN_END)
    {
      syntax_error_here (&parser, _("an operator or the end"));
      root = NULL;
    }
  if (root != NULL && !root->is_condition)
    {
      g_set_error_literal (&local_error, GV_FILTER_ERROR, GV_FILTER_ERROR_TYPE,
                           _("The filter is a number, not a condition: compare it, e.g. "
                             "“Z < 0.2”"));
      root = NULL;
    }
  if (root == NULL)
    {
      g_ptr_array_unref (parser.nodes);
      g_propagate_error (error, local_error);
      return NULL;
    }

  GvFilter *filter = g_new0 (GvFilter, 1);
  g_atomic_ref_count_init (&filter->ref_count);
  filter->expression = g_strdup (expression);
  filter->nodes = parser.nodes;
  filter->root = root;
  return filter;
}

GvFilter *
gv_filter_ref (GvFilter *filter)
{
  g_return_val_if_fail (filter != NULL, NULL);
  g_atomic_ref_count_inc (&filter->ref_count);
  return filter;
}

void
gv_filter_unref (GvFilter *filter)
{
  g_return_if_fail (filter != NULL);
  if (!g_atomic_ref_count_dec (&filter->ref_count))
    return;
  g_free (filter->expression);
  g_ptr_array_unref (filter->nodes);
  g_free (filter);
}

const char *
gv_filter_get_expression (GvFilter *filter)
{
  g_return_val_if_fail (filter != NULL, NULL);
  return filter->expression;
}

static double
evaluate_number (const Node *node, gint64 row)
{
  switch (node->kind)
    {
    case NODE_CONSTANT: return node->constant;
    case NODE_COLUMN: return node->column[row];
    case NODE_NEGATE: return -evaluate_number (node->a, row);
    case NODE_ADD: return evaluate_number (node->a, row) + evaluate_number (node->b, row);
    case NODE_SUBTRACT: return evaluate_number (node->a, row) - evaluate_number (node->b, row);
    case NODE_MULTIPLY: return evaluate_number (node->a, row) * evaluate_number (node->b, row);
    case NODE_DIVIDE: return evaluate_number (node->a, row) / evaluate_number (node->b, row);
    case NODE_ABS: return fabs (evaluate_number (node->a, row));
    case NODE_SQRT: return sqrt (evaluate_number (node->a, row));
    case NODE_LOG10: return log10 (evaluate_number (node->a, row));
    case NODE_LN: return log (evaluate_number (node->a, row));
    case NODE_EXP: return exp (evaluate_number (node->a, row));
    default: g_assert_not_reached ();
    }
}

static gboolean
evaluate_condition (const Node *node, gint64 row)
{
  switch (node->kind)
    {
    case NODE_AND:
      return evaluate_condition (node->a, row) && evaluate_condition (node->b, row);
    case NODE_OR:
      return evaluate_condition (node->a, row) || evaluate_condition (node->b, row);
    case NODE_NOT: return !evaluate_condition (node->a, row);
    case NODE_ISNAN: return isnan (evaluate_number (node->a, row));
    default: break;
    }

  double a = evaluate_number (node->a, row), b = evaluate_number (node->b, row);
  if (isnan (a) || isnan (b))
    return FALSE; /* a missing value satisfies no comparison, "!=" included */
  switch (node->kind)
    {
    case NODE_LT: return a < b;
    case NODE_LE: return a <= b;
    case NODE_GT: return a > b;
    case NODE_GE: return a >= b;
    case NODE_EQ: return a == b;
    case NODE_NE: return a != b;
    default: g_assert_not_reached ();
    }
}

gboolean
gv_filter_matches (GvFilter *filter, gint64 row)
{
  g_return_val_if_fail (filter != NULL, FALSE);
  g_return_val_if_fail (row >= 0, FALSE);
  return evaluate_condition (filter->root, row);
}

gsize
gv_filter_select (GvFilter *filter, const gint64 *rows, gsize n_rows, gint64 *matched)
{
  g_return_val_if_fail (filter != NULL, 0);
  g_return_val_if_fail (n_rows == 0 || (rows != NULL && matched != NULL), 0);

  gsize n = 0;
  for (gsize i = 0; i < n_rows; i++)
    {
      gint64 row = rows[i];
      if (evaluate_condition (filter->root, row))
        matched[n++] = row;
    }
  return n;
}
