"""aufacial.metrics against independent implementations: pingouin (ICC), scikit-learn (F1, accuracy), scipy/numpy (PCC, CCC)."""
import warnings
import numpy as np
import pandas as pd
import pytest

from aufacial import metrics as M

pg = pytest.importorskip('pingouin')
skm = pytest.importorskip('sklearn.metrics')
stats = pytest.importorskip('scipy.stats')

SF_TABLE = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)


def _pg_icc3(table):
    n, k = table.shape
    df = pd.DataFrame([(i, j, table[i, j]) for i in range(n) for j in range(k)], columns=['target', 'rater', 'score'])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        t = pg.intraclass_corr(df, targets='target', raters='rater', ratings='score').set_index('Type')
    return float(t.loc['ICC(C,1)' if 'ICC(C,1)' in t.index else 'ICC3', 'ICC'])


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, (150, 5)).astype(float)
    p = 0.8 * y + rng.normal(0.3, 0.9, y.shape)
    return p, y


def test_icc_shrout_fleiss_textbook():
    "Shrout & Fleiss (1979) Table 2: ICC(3,1) = .71."
    assert round(M.icc31_naive(SF_TABLE), 2) == 0.71
    assert M.icc31_ratings(SF_TABLE)[0] == pytest.approx(M.icc31_naive(SF_TABLE), rel=1e-12)
    assert M.icc31_ratings(SF_TABLE)[0] == pytest.approx(_pg_icc3(SF_TABLE), rel=1e-10)


def test_icc_against_pingouin(data):
    p, y = data
    ours = M.icc31(p, y)
    ref = [_pg_icc3(np.stack([p[:, a], y[:, a]], 1)) for a in range(y.shape[1])]
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_icc_nan_rows_dropped_per_column(data):
    p, y = data
    y = y.copy(); y[::3, 1] = np.nan
    keep = np.isfinite(y[:, 1])
    assert M.icc31(p, y)[1] == pytest.approx(_pg_icc3(np.stack([p[keep, 1], y[keep, 1]], 1)), rel=1e-10)
    assert M.icc31(p, y)[0] == pytest.approx(M.icc31(p[:, 0], y[:, 0])[0], rel=1e-12)


def test_icc_edge_cases(data):
    p, y = data
    y = y.copy(); y[:, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        r = M.icc31(np.full_like(p, 1.5), y)
    assert np.allclose(r[[0, 1, 3, 4]], 0.0) and np.isnan(r[2])
    with pytest.raises(ValueError, match=r'pred has shape \(150, 2\) but true has shape \(150, 5\)'):
        M.icc31(p[:, :2], y)


def test_pcc_ccc_mae_mse(data):
    p, y = data
    np.testing.assert_allclose(M.pcc(p, y), [stats.pearsonr(p[:, a], y[:, a])[0] for a in range(5)], rtol=1e-10)
    ref_ccc = [2 * np.cov(p[:, a], y[:, a], bias=True)[0, 1] / (p[:, a].var() + y[:, a].var() + (p[:, a].mean() - y[:, a].mean()) ** 2)
               for a in range(5)]
    np.testing.assert_allclose(M.ccc(p, y), ref_ccc, rtol=1e-10)
    np.testing.assert_allclose(M.mae(p, y), skm.mean_absolute_error(y, p, multioutput='raw_values'), rtol=1e-12)
    np.testing.assert_allclose(M.mse(p, y), skm.mean_squared_error(y, p, multioutput='raw_values'), rtol=1e-12)


def test_au_f1_against_sklearn(data):
    p, y = data
    for thr in (1.0, 2.0, 3.0):
        np.testing.assert_allclose(M.au_f1(p, y, threshold=thr), [skm.f1_score(y[:, a] >= thr, p[:, a] >= thr) for a in range(5)], rtol=1e-12)


def test_accuracy_macro_f1_against_sklearn():
    rng = np.random.default_rng(2)
    t = rng.integers(0, 7, 400); s = rng.normal(size=(400, 7)); s[np.arange(400), t] += 0.8
    pl = s.argmax(1)
    assert M.accuracy(s, t) == pytest.approx(skm.accuracy_score(t, pl))
    assert M.macro_f1(pl, t) == pytest.approx(skm.f1_score(t, pl, average='macro'))
    assert M.macro_f1(pl, t, n_classes=9) == pytest.approx(skm.f1_score(t, pl, average='macro', labels=range(9), zero_division=0))
    tm = t.copy(); tm[:50] = -1
    assert M.accuracy(pl, tm) == pytest.approx(skm.accuracy_score(t[50:], pl[50:]))


def test_retrieval_against_brute_force():
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 4, 80); f = rng.normal(size=(4, 8))[lab] + rng.normal(0, 1.2, (80, 8))
    assert M.retrieval_map(f, lab, block=16) == pytest.approx(M.retrieval_map_naive(f, lab), rel=1e-12)
    for k in (1, 10, 79):
        assert M.precision_at_k(f, lab, k, block=16) == pytest.approx(M.precision_at_k_naive(f, lab, k), rel=1e-12)


def test_intensity_report_frame(data):
    p, y = data
    df = M.intensity_report(p, y, (1, 2, 4, 6, 12))
    assert list(df.index) == ['AU1', 'AU2', 'AU4', 'AU6', 'AU12', 'mean']
    assert list(df.columns) == ['ICC', 'PCC', 'MAE', 'MSE']
    assert df.loc['mean', 'ICC'] == pytest.approx(M.icc31(p, y).mean())


def test_ridge_probe_against_sklearn():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(4)
    Xtr, Xte = rng.normal(size=(120, 6)), rng.normal(size=(30, 6))
    Y = Xtr @ rng.normal(size=(6, 2)) + rng.normal(0, 0.2, (120, 2)); Y[::3, 0] = np.nan
    sc = StandardScaler().fit(Xtr)
    ref = np.stack([Ridge(alpha=0.5).fit(sc.transform(Xtr)[np.isfinite(Y[:, a])], Y[np.isfinite(Y[:, a]), a]).predict(sc.transform(Xte))
                    for a in range(2)], 1)
    np.testing.assert_allclose(M.linear_probe_regress(Xtr, Y, Xte, alpha=0.5), ref, rtol=1e-8, atol=1e-10)
