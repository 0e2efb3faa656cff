/* mlo._ext: the hot calls of the Python binding (mlo.log_metric, Run.log_metric, and
 * Run.log_param / Run.set_tag, which the fluent log_param / set_tag call) as
 * C functions of CPython (METH_FASTCALL), in place of a ctypes call, which costs
 * more than the library's own function.  Optional: without it (not built, or
 * $MLO_PY_NO_EXT=1) the binding uses its ctypes code, and the two behave alike.
 *
 * What this module does, and what it leaves to Python:
 * - It calls libmlo through the addresses of mlo_log_metric, mlo_log_metric_ts,
 *   mlo_log_param and mlo_set_tag that the ctypes layer hands it (setup()): the
 *   very library ctypes loaded, not a second copy found by the dynamic loader.
 * - It handles the common arguments the way ctypes converts them (a value through
 *   PyFloat_AsDouble, as ctypes' c_double; a step and a timestamp as ctypes'
 *   c_int64: any int or __index__ object, masked to 64 bits; not a float); the key
 *   through the binding's own cache of encoded keys (mlo._client._keys), encoded by
 *   mlo._client._key when missing; a param or tag value that is a str (or None, an
 *   int, a float: their str()) as UTF-8 without NUL.
 * - Anything else (an argument ctypes refuses, a keyword it does not know, a run
 *   without a handle, no active run, run_id=, synchronous=) goes, before anything
 *   is logged, to the Python function this one replaces: same checks, same
 *   exceptions.  A status other than MLO_OK goes to the binding's failure path
 *   (Run._fail, mlo._fluent._fail_cur), which raises the status's exception.
 * - The GIL as in the ctypes code: kept around mlo_log_metric for a run whose
 *   client drops when its queue is full (the call never blocks), released for a
 *   client that may wait for room, and around the other calls.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

#include "mlo.h"

/* Bumped when the interface to mlo/_client.py changes: a stale build is not used. */
#define MLO_EXT_ABI 2

typedef int (*log_metric_fn)(mlo_run_t *, const char *, double, int64_t);
typedef int (*log_metric_ts_fn)(mlo_run_t *, const char *, double, int64_t, int64_t);
typedef int (*log_kv_fn)(mlo_run_t *, const char *, const char *);

static log_metric_fn p_log_metric;
static log_metric_ts_fn p_log_metric_ts;
static log_kv_fn p_log_param;
static log_kv_fn p_set_tag;
static PyObject *keys;            /* mlo._client._keys: str -> UTF-8 bytes */
static PyObject *key_fn;          /* mlo._client._key */
static PyObject *run_fallback;    /* Run.log_metric of the ctypes code */
static PyObject *param_fallback;  /* Run.log_param of the ctypes code */
static PyObject *tag_fallback;    /* Run.set_tag of the ctypes code */
static PyObject *fluent_fallback; /* mlo.log_metric of the ctypes code */
static PyObject *fluent_fail;     /* mlo._fluent._fail_cur(rc, timestamp_given) */
static PyObject *cur_run;         /* the active run of the fluent API (a RunBase) or NULL */
static PyObject *str_fail;        /* "_fail" */
static PyObject *str_ts_hint;     /* "timestamp must be >= 0" */
static PyObject *run_names[4];    /* key, value, step, timestamp (key, value: log_param) */
static PyObject *fluent_names[6]; /* key, value, step, synchronous, timestamp, run_id */

/* ---- RunBase: the base class of mlo.Run when this module is in use ---------------- */

typedef struct {
    PyObject ob_base;
    mlo_run_t *h;    /* the run handle held by h_obj, NULL for None */
    PyObject *h_obj; /* Run._h: a ctypes pointer to the mlo_run_t, or NULL */
    char held;       /* Run._held: mlo_log_metric may be called holding the GIL */
} RunBase;

static PyObject *runbase_get_h(RunBase *self, void *closure) {
    (void)closure;
    PyObject *o = self->h_obj ? self->h_obj : Py_None;
    Py_INCREF(o);
    return o;
}

/* Run._h = a ctypes pointer (its 8 bytes are the handle) or None. */
static int runbase_set_h(RunBase *self, PyObject *value, void *closure) {
    (void)closure;
    mlo_run_t *h = NULL;
    if (value == NULL)
        value = Py_None;
    if (value != Py_None) {
        Py_buffer b;
        if (PyObject_GetBuffer(value, &b, PyBUF_SIMPLE) < 0)
            return -1;
        if (b.len != (Py_ssize_t)sizeof h) {
            PyBuffer_Release(&b);
            PyErr_SetString(PyExc_TypeError, "Run._h must be a ctypes pointer or None");
            return -1;
        }
        memcpy(&h, b.buf, sizeof h);
        PyBuffer_Release(&b);
    }
    Py_INCREF(value);
    Py_XSETREF(self->h_obj, value);
    self->h = h;
    return 0;
}

static int runbase_traverse(RunBase *self, visitproc visit, void *arg) {
    Py_VISIT(self->h_obj);
    return 0;
}

static int runbase_clear(RunBase *self) {
    Py_CLEAR(self->h_obj);
    self->h = NULL;
    return 0;
}

static void runbase_dealloc(RunBase *self) {
    PyObject_GC_UnTrack(self);
    runbase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- arguments --------------------------------------------------------------------- */

enum { LM_ERROR = -1, LM_OK = 0, LM_PYTHON = 1 };

/* After a conversion failed: the errors the ctypes code catches (it then converts
 * again, strictly, and raises MloError) are the Python function's to handle; any
 * other propagates, as from the ctypes code's first conversion. */
static int conversion_failed(void) {
    if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_OverflowError) ||
        PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return LM_PYTHON;
    }
    return LM_ERROR;
}

/* As ctypes' c_double: PyFloat_AsDouble (float, int, __float__, __index__). */
static int to_double(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return LM_OK;
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred())
        return conversion_failed();
    *out = d;
    return LM_OK;
}

/* As ctypes' c_int64: not a float; an int or __index__ object, masked to 64 bits. */
static int to_int64(PyObject *o, int64_t *out) {
    if (PyLong_CheckExact(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (!overflow) {
            *out = v;
            return LM_OK;
        }
    } else if (PyFloat_Check(o)) {
        return LM_PYTHON;
    }
    unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return conversion_failed();
    *out = (int64_t)v;
    return LM_OK;
}

/* `c_int64(step) if step else 0` of the ctypes code. */
static int to_step(PyObject *o, int64_t *out) {
    if (o == NULL || o == Py_None) {
        *out = 0;
        return LM_OK;
    }
    if (!PyLong_CheckExact(o)) {
        int t = PyObject_IsTrue(o);
        if (t < 0)
            return conversion_failed();
        if (!t) {
            *out = 0;
            return LM_OK;
        }
    }
    return to_int64(o, out);
}

/* The encoded key (a new reference), as `_keys[key]`, else `_key(key)`. */
static PyObject *key_bytes(PyObject *key) {
    PyObject *b = PyDict_GetItemWithError(keys, key);
    if (b != NULL) {
        Py_INCREF(b);
    } else {
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) /* not hashable: _key says why */
                return NULL;
            PyErr_Clear();
        }
        b = PyObject_CallOneArg(key_fn, key);
        if (b == NULL)
            return NULL;
    }
    if (!PyBytes_Check(b)) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_TypeError, "mlo._client._key returned no bytes");
        return NULL;
    }
    return b;
}

/* Fills out[0..n) from the call's arguments; LM_PYTHON when the call is not one of
 * the simple shapes (more positional arguments than names, a keyword not among them
 * or given twice, a required one missing): Python then raises what it raises. */
static int parse(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **names,
                 Py_ssize_t n, Py_ssize_t required, PyObject **out) {
    if (nargs > n)
        return LM_PYTHON;
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = i < nargs ? args[i] : NULL;
    if (kwnames != NULL) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, k);
            Py_ssize_t j = 0;
            while (j < n && kw != names[j])
                j++;
            if (j == n && PyUnicode_Check(kw)) {
                for (j = 0; j < n; j++)
                    if (PyUnicode_Compare(kw, names[j]) == 0)
                        break;
            }
            if (j == n || out[j] != NULL)
                return LM_PYTHON;
            out[j] = args[nargs + k];
        }
    }
    for (Py_ssize_t i = 0; i < required; i++)
        if (out[i] == NULL)
            return LM_PYTHON;
    return LM_OK;
}

/* Converts the arguments and logs: the library's status, or -1 with a Python error
 * set, or -1 with *python = 1 when the Python function must take the call.  The
 * handle is read last: the conversions may run Python code (__float__, _key). */
static int log_metric(RunBase *run, int fluent, PyObject *key, PyObject *value, PyObject *step,
                      PyObject *ts, int *python) {
    *python = 0;
    PyObject *kb = key_bytes(key);
    if (kb == NULL)
        return -1;
    double d = 0;
    int64_t s = 0, t = 0;
    int r = to_double(value, &d);
    if (r == LM_OK) {
        if (ts == NULL) {
            r = to_step(step, &s);
        } else if (fluent) {
            r = to_step(step, &s); /* c_int64(step or 0) */
        } else {
            r = step == NULL ? LM_OK : to_int64(step, &s); /* c_int64(step), default 0 */
        }
    }
    if (r == LM_OK && ts != NULL)
        r = to_int64(ts, &t);
    mlo_run_t *h = run->h;
    if (r == LM_OK && h == NULL)
        r = LM_PYTHON; /* closed meanwhile: the Python function says so */
    if (r != LM_OK) {
        Py_DECREF(kb);
        if (r == LM_PYTHON)
            *python = 1;
        return -1;
    }
    const char *k = PyBytes_AS_STRING(kb);
    int held = run->held;
    int rc;
    if (ts != NULL) {
        PyThreadState *st = PyEval_SaveThread();
        rc = p_log_metric_ts(h, k, d, s, t);
        PyEval_RestoreThread(st);
    } else if (held) {
        rc = p_log_metric(h, k, d, s);
    } else {
        PyThreadState *st = PyEval_SaveThread();
        rc = p_log_metric(h, k, d, s);
        PyEval_RestoreThread(st);
    }
    Py_DECREF(kb);
    return rc;
}

/* Calls fn(self, *args, **kwargs) with the arguments of a vectorcall. */
static PyObject *call_with_self(PyObject *fn, PyObject *self, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames) {
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **all = small;
    if (total + 1 > (Py_ssize_t)(sizeof small / sizeof small[0])) {
        all = PyMem_New(PyObject *, total + 1);
        if (all == NULL)
            return PyErr_NoMemory();
    }
    all[0] = self;
    for (Py_ssize_t i = 0; i < total; i++)
        all[i + 1] = args[i];
    PyObject *res = PyObject_Vectorcall(fn, all, nargs + 1, kwnames);
    if (all != small)
        PyMem_Free(all);
    return res;
}

static int check_setup(PyObject *fallback) {
    if (fallback == NULL || p_log_metric == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "mlo._ext is not set up (mlo._client does that)");
        return -1;
    }
    return 0;
}

/* Run.log_metric(key, value, step=0, timestamp=None) */
static PyObject *runbase_log_metric(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                    PyObject *kwnames) {
    RunBase *run = (RunBase *)self;
    PyObject *a[4];
    if (check_setup(run_fallback) < 0)
        return NULL;
    if (run->h == NULL || parse(args, nargs, kwnames, run_names, 4, 2, a) != LM_OK)
        return call_with_self(run_fallback, self, args, nargs, kwnames);
    PyObject *ts = a[3] == Py_None ? NULL : a[3];
    int python;
    int rc = log_metric(run, 0, a[0], a[1], a[2], ts, &python);
    if (rc == 0)
        Py_RETURN_NONE;
    if (rc < 0)
        return python ? call_with_self(run_fallback, self, args, nargs, kwnames) : NULL;
    PyObject *st = PyLong_FromLong(rc);
    if (st == NULL)
        return NULL;
    PyObject *res =
        PyObject_CallMethodObjArgs(self, str_fail, st, ts ? str_ts_hint : Py_None, NULL);
    Py_DECREF(st);
    if (res == NULL)
        return NULL;
    Py_DECREF(res);
    Py_RETURN_NONE;
}

/* A param or tag value as the ctypes code's _val gives it to C (str(value), None as
 * "None", UTF-8), for a str, None, an int or a float: a new reference to the object
 * holding the UTF-8 (*utf8 points into it); NULL without an error for any other
 * value, a lone surrogate or a NUL character (the Python function's to handle). */
static PyObject *kv_value(PyObject *value, const char **utf8) {
    PyObject *str;
    if (PyUnicode_CheckExact(value)) {
        Py_INCREF(value);
        str = value;
    } else if (value == Py_None || PyLong_CheckExact(value) || PyFloat_CheckExact(value) ||
               PyBool_Check(value)) {
        str = value == Py_None ? PyUnicode_FromString("None") : PyObject_Str(value);
        if (str == NULL)
            return NULL;
    } else {
        return NULL;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(str, &n);
    if (u == NULL || memchr(u, 0, (size_t)n) != NULL) {
        PyErr_Clear(); /* a lone surrogate: _val encodes it with surrogatepass */
        Py_DECREF(str);
        return NULL;
    }
    *utf8 = u;
    return str;
}

/* Run.log_param(key, value) and Run.set_tag(key, value) */
static PyObject *log_kv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                        log_kv_fn fn, PyObject *fallback, int param) {
    RunBase *run = (RunBase *)self;
    PyObject *a[2];
    if (check_setup(fallback) < 0)
        return NULL;
    if (fn == NULL || run->h == NULL || parse(args, nargs, kwnames, run_names, 2, 2, a) != LM_OK)
        return call_with_self(fallback, self, args, nargs, kwnames);
    PyObject *kb = key_bytes(a[0]);
    if (kb == NULL)
        return NULL;
    const char *v = NULL;
    PyObject *vs = kv_value(a[1], &v);
    mlo_run_t *h = run->h;
    if (vs == NULL || h == NULL) {
        Py_DECREF(kb);
        Py_XDECREF(vs);
        return PyErr_Occurred() ? NULL : call_with_self(fallback, self, args, nargs, kwnames);
    }
    PyThreadState *st = PyEval_SaveThread();
    int rc = fn(h, PyBytes_AS_STRING(kb), v);
    PyEval_RestoreThread(st);
    Py_DECREF(kb);
    Py_DECREF(vs);
    if (rc != 0) {
        PyObject *o = PyLong_FromLong(rc);
        if (o == NULL)
            return NULL;
        PyObject *res = PyObject_CallMethodObjArgs(self, str_fail, o, NULL);
        Py_DECREF(o);
        if (res == NULL)
            return NULL;
        Py_DECREF(res);
    }
    if (param) { /* returns the value, as mlflow's */
        Py_INCREF(a[1]);
        return a[1];
    }
    Py_RETURN_NONE;
}

static PyObject *runbase_log_param(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames) {
    return log_kv(self, args, nargs, kwnames, p_log_param, param_fallback, 1);
}

static PyObject *runbase_set_tag(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames) {
    return log_kv(self, args, nargs, kwnames, p_set_tag, tag_fallback, 0);
}

/* mlo.log_metric(key, value, step=None, synchronous=None, timestamp=None, run_id=None) */
static PyObject *fluent_log_metric(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames) {
    (void)module;
    PyObject *a[6];
    if (check_setup(fluent_fallback) < 0)
        return NULL;
    RunBase *run = (RunBase *)cur_run;
    if (run == NULL || run->h == NULL ||
        parse(args, nargs, kwnames, fluent_names, 6, 2, a) != LM_OK ||
        (a[3] != NULL && a[3] != Py_None) || (a[5] != NULL && a[5] != Py_None))
        return PyObject_Vectorcall(fluent_fallback, args, nargs, kwnames);
    PyObject *ts = a[4] == Py_None ? NULL : a[4];
    int python;
    Py_INCREF(run); /* the active run may change while the GIL is released */
    int rc = log_metric(run, 1, a[0], a[1], a[2], ts, &python);
    Py_DECREF(run);
    if (rc == 0)
        Py_RETURN_NONE;
    if (rc < 0)
        return python ? PyObject_Vectorcall(fluent_fallback, args, nargs, kwnames) : NULL;
    PyObject *res = PyObject_CallFunction(fluent_fail, "iO", rc, ts ? Py_True : Py_False);
    if (res == NULL)
        return NULL;
    Py_DECREF(res);
    Py_RETURN_NONE;
}

/* ---- module functions ------------------------------------------------------------- */

static void *address(PyObject *o, const char *what) {
    void *p = PyLong_AsVoidPtr(o);
    if (p == NULL && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "%s: a NULL address", what);
    return p;
}

static PyObject *ext_setup(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *a_lm, *a_ts, *a_lp, *a_st, *k, *kf, *rf, *pf, *tf;
    if (!PyArg_ParseTuple(args, "OOOOO!OOOO:setup", &a_lm, &a_ts, &a_lp, &a_st, &PyDict_Type, &k,
                          &kf, &rf, &pf, &tf))
        return NULL;
    void *lm = address(a_lm, "mlo_log_metric");
    if (lm == NULL)
        return NULL;
    void *ts = address(a_ts, "mlo_log_metric_ts");
    if (ts == NULL)
        return NULL;
    void *lp = address(a_lp, "mlo_log_param");
    if (lp == NULL)
        return NULL;
    void *st = address(a_st, "mlo_set_tag");
    if (st == NULL)
        return NULL;
    /* the prototypes of the header, checked at compile time (nothing is evaluated) */
    (void)sizeof(p_log_metric == &mlo_log_metric);
    (void)sizeof(p_log_metric_ts == &mlo_log_metric_ts);
    (void)sizeof(p_log_param == &mlo_log_param);
    (void)sizeof(p_set_tag == &mlo_set_tag);
    memcpy(&p_log_metric, &lm, sizeof lm); /* object pointer to function pointer (POSIX) */
    memcpy(&p_log_metric_ts, &ts, sizeof ts);
    memcpy(&p_log_param, &lp, sizeof lp);
    memcpy(&p_set_tag, &st, sizeof st);
    Py_INCREF(k);
    Py_XSETREF(keys, k);
    Py_INCREF(kf);
    Py_XSETREF(key_fn, kf);
    Py_INCREF(rf);
    Py_XSETREF(run_fallback, rf);
    Py_INCREF(pf);
    Py_XSETREF(param_fallback, pf);
    Py_INCREF(tf);
    Py_XSETREF(tag_fallback, tf);
    Py_RETURN_NONE;
}

static PyObject *ext_setup_fluent(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *fb, *ff;
    if (!PyArg_ParseTuple(args, "OO:setup_fluent", &fb, &ff))
        return NULL;
    Py_INCREF(fb);
    Py_XSETREF(fluent_fallback, fb);
    Py_INCREF(ff);
    Py_XSETREF(fluent_fail, ff);
    Py_RETURN_NONE;
}

static PyTypeObject RunBaseType;

static PyObject *ext_set_current(PyObject *module, PyObject *run) {
    (void)module;
    if (run != Py_None && !PyObject_TypeCheck(run, &RunBaseType)) {
        PyErr_SetString(PyExc_TypeError, "set_current: a Run or None");
        return NULL;
    }
    PyObject *old = cur_run;
    cur_run = NULL;
    if (run != Py_None) {
        Py_INCREF(run);
        cur_run = run;
    }
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

static PyMethodDef runbase_methods[] = {
    {"log_metric", (PyCFunction)(void (*)(void))runbase_log_metric, METH_FASTCALL | METH_KEYWORDS,
     "log_metric($self, key, value, step=0, timestamp=None)\n--\n\n"
     "Logs one metric point.  value: anything float() accepts (numpy scalars\n"
     "included); step: an int (default 0); timestamp: ms since the epoch (default now)."},
    {"log_param", (PyCFunction)(void (*)(void))runbase_log_param, METH_FASTCALL | METH_KEYWORDS,
     "log_param($self, key, value)\n--\n\n"
     "Logs a param (str(value), as mlflow).  Params are immutable on the server."},
    {"set_tag", (PyCFunction)(void (*)(void))runbase_set_tag, METH_FASTCALL | METH_KEYWORDS,
     "set_tag($self, key, value)\n--\n\nSets a tag (str(value)); last write wins."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef runbase_getset[] = {
    {"_h", (getter)runbase_get_h, (setter)runbase_set_h,
     "the run handle (a ctypes pointer), None once the client is closed", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef runbase_members[] = {
    {"_held", T_BOOL, offsetof(RunBase, held), 0,
     "mlo_log_metric may be called with the GIL held (a client that drops)"},
    {NULL, 0, 0, 0, NULL}};

/* the head's macro ends with a comma, which clang-format does not know */
/* clang-format off */
static PyTypeObject RunBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mlo._ext.RunBase",
    .tp_basicsize = sizeof(RunBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C part of mlo.Run: its handle and its log_metric.",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)runbase_dealloc,
    .tp_traverse = (traverseproc)runbase_traverse,
    .tp_clear = (inquiry)runbase_clear,
    .tp_methods = runbase_methods,
    .tp_getset = runbase_getset,
    .tp_members = runbase_members,
};
/* clang-format on */

static PyMethodDef ext_methods[] = {
    {"log_metric", (PyCFunction)(void (*)(void))fluent_log_metric, METH_FASTCALL | METH_KEYWORDS,
     "log_metric($module, key, value, step=None, synchronous=None, timestamp=None, "
     "run_id=None)\n--\n\n"
     "Logs a metric point to the active run (started if there is none), as mlflow's\n"
     "log_metric (step None: 0; timestamp: ms since the epoch, default now).  mlo logs\n"
     "asynchronously: synchronous=True waits until the server has it, False returns a\n"
     "RunOperations."},
    {"setup", ext_setup, METH_VARARGS,
     "setup(addresses of mlo_log_metric, mlo_log_metric_ts, mlo_log_param, mlo_set_tag, "
     "keys, key_fn, the ctypes code's Run.log_metric, log_param, set_tag)"},
    {"setup_fluent", ext_setup_fluent, METH_VARARGS, "setup_fluent(fallback, fail)"},
    {"set_current", ext_set_current, METH_O, "set_current(run or None): the fluent active run"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef ext_module = {PyModuleDef_HEAD_INIT,
                                        "mlo._ext",
                                        "The hot calls of mlo's Python binding, in C.",
                                        -1,
                                        ext_methods,
                                        NULL,
                                        NULL,
                                        NULL,
                                        NULL};

PyMODINIT_FUNC PyInit__ext(void) {
    static const char *rn[] = {"key", "value", "step", "timestamp"};
    static const char *fn[] = {"key", "value", "step", "synchronous", "timestamp", "run_id"};
    for (size_t i = 0; i < 4; i++)
        if ((run_names[i] = PyUnicode_InternFromString(rn[i])) == NULL)
            return NULL;
    for (size_t i = 0; i < 6; i++)
        if ((fluent_names[i] = PyUnicode_InternFromString(fn[i])) == NULL)
            return NULL;
    if ((str_fail = PyUnicode_InternFromString("_fail")) == NULL ||
        (str_ts_hint = PyUnicode_FromString("timestamp must be >= 0")) == NULL)
        return NULL;
    if (PyType_Ready(&RunBaseType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&ext_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RunBaseType);
    if (PyModule_AddObject(m, "RunBase", (PyObject *)&RunBaseType) < 0 ||
        PyModule_AddIntConstant(m, "ABI", MLO_EXT_ABI) < 0) {
        Py_DECREF(&RunBaseType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
