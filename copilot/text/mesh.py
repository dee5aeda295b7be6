"""MeSH major terms of the IU reports mapped onto the classifier's finding labels."""

from __future__ import annotations

MESH_TO_FINDING = {
    "Cardiomegaly": "Cardiomegaly",
    "Pleural Effusion": "Effusion",
    "Pulmonary Atelectasis": "Atelectasis",
    "Opacity": "Lung opacity",
    "Nodule": "Nodule",
    "Mass": "Mass",
    "Pneumothorax": "Pneumothorax",
    "Pulmonary Edema": "Edema",
    "Emphysema": "Emphysema",
    "Pulmonary Emphysema": "Emphysema",
    "Pneumonia": "Pneumonia",
    "Consolidation": "Consolidation",
    "Infiltrate": "Infiltration",
    "Pulmonary Fibrosis": "Fibrosis",
    "Hernia, Hiatal": "Hernia",
    "Fractures, Bone": "Fracture",
}


def mesh_findings(mesh_terms: list[str]) -> set[str]:
    """Finding labels named by a report's MeSH major terms ("Cardiomegaly/mild" -> Cardiomegaly)."""
    return {MESH_TO_FINDING[t.split("/")[0]] for t in mesh_terms if t.split("/")[0] in MESH_TO_FINDING}
